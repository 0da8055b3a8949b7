import Quantization
import SafeTensors

/// A PyTorch pickle checkpoint (`pytorch_model.bin`, `.pt`, `.pth`) read without running any
/// code: its state dict, each entry a view into the file's storages.
///
/// Opening reads the container's directory and the pickles only, never tensor data: a tensor is
/// a ``PickleTensor`` whose ``PickleTensor/contiguousByteRange`` (or element offsets) say where
/// its bytes are, to be read by range. The pickle runs on a symbolic machine that knows only
/// the opcodes and globals a tensor checkpoint needs (see ``PickleMachine``); the result is
/// pattern-matched against the call shapes torch.save writes, and anything else is refused.
///
/// ```swift
/// let file = try PickleCheckpointFile(path: "model/pytorch_model.bin")
/// for entry in file.entries {
///   if case .tensor(let tensor) = entry.value, let range = tensor.contiguousByteRange {
///     print(entry.name, tensor.dtype, tensor.shape, range)
///   }
/// }
/// ```
///
/// The file descriptor stays open while the value lives; reads are `pread`s and may run from
/// any number of tasks at once.
public final class PickleCheckpointFile: Sendable {
  /// The container format.
  public enum Format: String, Sendable, Equatable {
    /// torch.save's zip archive (torch ≥ 1.6; zip64 included).
    case zip = "pickle-zip"
    /// torch.save's legacy format (torch < 1.6, or `_use_new_zipfile_serialization=False`).
    case legacy = "pickle-legacy"
  }

  /// The name of a sharded pickle checkpoint's index, read with `ShardIndex.decode` (the same
  /// schema and plain-file-name rules as `model.safetensors.index.json`).
  public static let indexFileName = "pytorch_model.bin.index.json"

  /// The path the file was opened at.
  public let path: String
  /// The container format.
  public let format: Format
  /// The state dict, in the file's order.
  public let entries: [PickleEntry]
  /// Every storage a tensor views, in file order.
  public let storages: [PickleStorage]
  private let reader: FileReader
  private let positions: [ExactName: Int]

  /// Opens and reads the checkpoint at `path`.
  ///
  /// - Throws: ``PickleError`` naming the file, and where known the byte offset and the entry.
  public convenience init(path: String) throws(PickleError) {
    try self.init(reader: try FileReader(path: path))
  }

  /// Reads the checkpoint `reader` holds (a file, or bytes in memory for tests).
  init(reader: FileReader) throws(PickleError) {
    let path = reader.path
    let archive = try TorchArchive(reader)
    let tensors = TensorMatcher(storages: archive.storages)
    let affine = AffineQuantizedMatcher(tensors: tensors)
    guard case .dict(let root) = archive.root else {
      throw PickleError(
        .unexpectedObject, "the pickle holds \(archive.root.kind), not a state dict", file: path,
        offset: archive.rootOffset)
    }
    var entries: [PickleEntry] = []
    entries.reserveCapacity(root.count)
    for (name, value) in root.members {
      do throws(PickleError) {
        if case .call(let call) = value, let wrapper = try WrapperSubclass(call) {
          if AffineQuantizedMatcher.handles(wrapper) {
            entries.append(PickleEntry(name: name, value: .affineQuantized(try affine.read(wrapper))))
          } else {
            entries.append(
              PickleEntry(name: name, value: .subclass(try TorchAOSubclassTensor(wrapper, tensors: tensors))))
          }
        } else {
          entries.append(PickleEntry(name: name, value: .tensor(try tensors.tensor(value))))
        }
      } catch {
        throw error.located(file: path, tensor: name)
      }
    }
    self.path = path
    self.format = archive.format
    self.entries = entries
    self.storages = archive.storages.values.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
    self.reader = reader
    self.positions = Dictionary(
      entries.enumerated().map { (ExactName($1.name), $0) }, uniquingKeysWith: { first, _ in first })
  }

  /// The entry named `name` (compared by UTF-8 bytes), or `nil`.
  public func entry(named name: String) -> PickleEntry? {
    positions[ExactName(name)].map { entries[$0] }
  }

  /// Fills `buffer` from absolute file offset `offset`.
  ///
  /// - Throws: `io` when the range is outside the file or the read fails. Wraps `pread(2)`.
  public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(PickleError) {
    try reader.read(at: offset, into: buffer)
  }

  /// Reads rows `rows` (indices along the first dimension) of `tensor` into `buffer` as a
  /// C-contiguous array of `rows.count × rowByteCount` bytes: one read for a contiguous view;
  /// for any other view, a read of ``PickleTensor/byteExtent(rows:)`` into `scratch` (held
  /// while gathering: ``PickleTensor/scratchBytes(rows:)``) and a gather.
  ///
  /// - Throws: `io` when a read fails or `buffer` has the wrong size.
  public func read(
    _ tensor: PickleTensor, rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(PickleError) {
    guard rows.lowerBound >= 0, rows.upperBound <= tensor.rowCount, buffer.count == rows.count * tensor.rowByteCount
    else {
      throw PickleError(
        .io, "rows \(rows) of a \(tensor.shape) tensor do not fill \(buffer.count) bytes", file: path)
    }
    let extent = tensor.byteExtent(rows: rows)
    if tensor.isContiguous || buffer.isEmpty {
      try reader.read(at: extent.lowerBound, into: buffer)
      return
    }
    try scratch.scoped { (scratch) throws(PickleError) in
      let source = scratch.take(extent.count)
      try reader.read(at: extent.lowerBound, into: source)
      var row = tensor
      row.restrict(toRows: rows)
      let size = tensor.elementSize
      var written = 0
      row.forEachElementOffset { offset in
        let from = offset - extent.lowerBound
        buffer.baseAddress!.advanced(by: written).copyMemory(from: source.baseAddress! + from, byteCount: size)
        written += size
      }
    }
  }

  /// The data of `tensor` as a C-contiguous array: read by range when the view is contiguous,
  /// gathered element by element from the storage's extent otherwise. Meant for small tensors
  /// (scales, tests); stream large ones by ``PickleTensor/contiguousByteRange``.
  ///
  /// - Throws: `io` when a read fails.
  public func bytes(of tensor: PickleTensor) throws(PickleError) -> [UInt8] {
    if let range = tensor.contiguousByteRange { return try reader.bytes(range) }
    let storage = try reader.bytes(tensor.storage.byteRange)
    let size = tensor.elementSize
    let start = tensor.storage.byteRange.lowerBound
    var bytes: [UInt8] = []
    bytes.reserveCapacity(tensor.byteCount)
    tensor.forEachElementOffset { offset in bytes.append(contentsOf: storage[offset - start..<offset - start + size]) }
    return bytes
  }

  /// All of `weight` dequantized, in its ``AffineQuantizedTensor/dtype``. Meant for small
  /// weights and tests; the pipeline dequantizes row chunks with
  /// ``AffineQuantizedTensor/dequantize(rows:data:scale:zeroPoint:into:)``.
  ///
  /// - Throws: `io` when a read fails.
  public func dequantizedBytes(of weight: AffineQuantizedTensor) throws(PickleError) -> [UInt8] {
    let data = try bytes(of: weight.data)
    let scale = try bytes(of: weight.scale)
    let zeroPoint = try weight.zeroPoint.map { (part) throws(PickleError) in try bytes(of: part) }
    var output = [UInt8](repeating: 0, count: weight.rowCount * weight.outputRowByteCount)
    let rows = 0..<weight.rowCount
    try data.withUnsafeBytes { data in
      scale.withUnsafeBytes { scale in
        output.withUnsafeMutableBytes { output in
          guard let zeroPoint else {
            return Result { () throws(PickleError) in
              try weight.dequantize(rows: rows, data: data, scale: scale, zeroPoint: nil, into: output)
            }
          }
          return zeroPoint.withUnsafeBytes { zeroPoint in
            Result { () throws(PickleError) in
              try weight.dequantize(rows: rows, data: data, scale: scale, zeroPoint: zeroPoint, into: output)
            }
          }
        }
      }
    }.get()
    return output
  }
}
