import Foundation
import Pickle
import Quantization
import SafeTensors
import TorchAO

/// A PyTorch pickle checkpoint (`pytorch_model.bin`, its shards and
/// `pytorch_model.bin.index.json`, or one `.bin`/`.pt`/`.pth` file), read by the ``Pickle``
/// reader without running anything and presented to the rest of the pipeline as a safetensors
/// checkpoint: one ``SafeTensorsFile`` per pickle file, whose header lists what the state dict
/// holds as safetensors would store it, and whose bytes are read from the archive by range.
///
/// - A plain tensor is itself (a view that is not contiguous is gathered row by row).
/// - A torchao tensor subclass is its parts under torchao's flattened names, described in the
///   file's `__metadata__` exactly as torchao's `flatten_tensor_state_dict` describes it: the
///   checkpoint reads as the torchao safetensors checkpoint of the same weights.
/// - A legacy `AffineQuantizedTensor` (plain layout) is its dequantized values, bit for bit as
///   torchao 0.12's `dequantize()` gives them.
///
/// In a model directory whose `config.json` says `tie_word_embeddings`, a tensor that views the
/// very bytes of one before it (`lm_head.weight` sharing `model.embed_tokens.weight`'s storage)
/// is left out, as transformers' `save_pretrained` leaves it out; elsewhere every name is kept.
enum PickleInput {
  /// The file names of a pickle model directory.
  static let singleFile = "pytorch_model.bin"

  /// Whether `path` is a pickle checkpoint: a `.bin`, `.pt` or `.pth` file, or a file not named
  /// `.safetensors` that starts as a zip archive or as torch's legacy format (a pickled magic
  /// number); or a directory with `pytorch_model.bin` or `pytorch_model.bin.index.json` and
  /// neither `model.safetensors` nor its index.
  static func isPickle(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return false }
    guard isDirectory.boolValue else {
      if [".bin", ".pt", ".pth"].contains(where: path.hasSuffix) { return true }
      guard !path.hasSuffix(".safetensors") else { return false }
      let start = FileHandle(forReadingAtPath: path).flatMap { try? $0.read(upToCount: 4) }.map(Array.init) ?? []
      return start == [0x50, 0x4B, 0x03, 0x04] || start == [0x80, 0x02, 0x8A, 0x0A]
    }
    let names = Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
    return !names.contains("model.safetensors") && !names.contains(ShardIndex.fileName)
      && (names.contains(singleFile) || names.contains(PickleCheckpointFile.indexFileName))
  }

  /// Opens the pickle checkpoint at `path` (``isPickle(_:)``).
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming the file, byte offset and rule when a
  ///   file is refused by the reader, or the index and the shards disagree.
  static func open(_ path: String) throws(PipelineError) -> Checkpoint {
    var isDirectory: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
    let directory = isDirectory.boolValue ? path : nil
    let paths: [String]
    let index: ShardIndex?
    if let directory {
      let indexPath = join(directory, PickleCheckpointFile.indexFileName)
      if FileManager.default.fileExists(atPath: indexPath) {
        index = try readIndex(indexPath)
        paths = index!.shardFiles.map { join(directory, $0) }
      } else {
        index = nil
        paths = [join(directory, singleFile)]
      }
    } else {
      index = nil
      paths = [path]
    }
    var pickles: [PickleCheckpointFile] = []
    for file in paths {
      do {
        pickles.append(try PickleCheckpointFile(path: file))
      } catch {
        throw PipelineError(.invalidInput, "\(error)", path: file, cause: error)
      }
    }
    if let index { try check(index, against: pickles) }
    let tied = directory.map(tiesWordEmbeddings) ?? false
    let files = try present(pickles, droppingTiedCopies: tied)
    let format =
      pickles.contains { $0.entries.contains { if case .subclass = $0.value { true } else { false } } }
      ? "torchao pickle" : "pickle (\(pickles[0].format == .zip ? "zip" : "legacy"))"
    // Legacy weights are read dequantized: the quantization_config of their time no longer
    // describes them (a recipe replaces it; `reshard` and `dequantize` drop it).
    let dequantized = pickles.contains {
      $0.entries.contains { if case .affineQuantized = $0.value { true } else { false } }
    }
    do {
      return try Checkpoint(path: path, presenting: files, format: format, dequantized: dequantized)
    } catch {
      throw PipelineError(.invalidInput, "\(error)", path: error.file ?? path, tensor: error.tensor, cause: error)
    }
  }

  private static func readIndex(_ path: String) throws(PipelineError) -> ShardIndex {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw PipelineError(.io, "cannot read \(path)", path: path)
    }
    do {
      let index = try ShardIndex.decode(Array(data), path: path)
      guard !index.weightMap.isEmpty else {
        throw SafeTensorsError(.indexFormat, "its weight_map is empty: the index lists no tensors", file: path)
      }
      return index
    } catch {
      throw PipelineError(.invalidInput, "\(error)", path: path, cause: error)
    }
  }

  /// Refuses an index that does not list exactly the shards' state-dict keys, each in its shard.
  private static func check(_ index: ShardIndex, against pickles: [PickleCheckpointFile]) throws(PipelineError) {
    var shardOf: [ExactName: String] = [:]
    for (tensor, file) in index.weightMap { shardOf[ExactName(tensor)] = file }
    let indexPath = join((pickles[0].path as NSString).deletingLastPathComponent, PickleCheckpointFile.indexFileName)
    var seen = 0
    for pickle in pickles {
      let name = (pickle.path as NSString).lastPathComponent
      for entry in pickle.entries {
        guard let listed = shardOf[ExactName(entry.name)] else {
          throw PipelineError(
            .invalidInput, "\(pickle.path): tensor '\(entry.name)' is in the shard but not in \(indexPath)",
            path: pickle.path, tensor: entry.name)
        }
        guard ExactName(listed) == ExactName(name) else {
          throw PipelineError(
            .invalidInput, "\(indexPath): tensor '\(entry.name)': the index puts it in \(listed), but it is in \(name)",
            path: indexPath, tensor: entry.name)
        }
        seen += 1
      }
    }
    let present = seen == index.weightMap.count ? [] : Set(pickles.flatMap { $0.entries.map { ExactName($0.name) } })
    if let missing = index.weightMap.first(where: { !present.isEmpty && !present.contains(ExactName($0.tensor)) }) {
      throw PipelineError(
        .invalidInput,
        "\(indexPath): tensor '\(missing.tensor)': the index puts it in \(missing.file), which does not hold it",
        path: indexPath, tensor: missing.tensor)
    }
  }

  /// Whether the model directory's `config.json` says `tie_word_embeddings: true`.
  private static func tiesWordEmbeddings(_ directory: String) -> Bool {
    MoEArchitecture.modelConfig(in: directory)?["tie_word_embeddings"] == .bool(true)
  }

  /// One presented file per pickle. Every file carries the torchao metadata of all of them when
  /// any entry is a torchao subclass (transformers needs it in every shard).
  private static func present(_ pickles: [PickleCheckpointFile], droppingTiedCopies: Bool) throws(PipelineError)
    -> [SafeTensorsFile]
  {
    var presented: [(pickle: PickleCheckpointFile, specs: [TensorSpec], items: [ExactName: PickledItem])] = []
    var descriptions: [(name: String, description: TensorDescription)] = []
    var hasSubclass = false
    for pickle in pickles {
      var specs: [TensorSpec] = []
      var items: [ExactName: PickledItem] = [:]
      var views = Set<PickleTensor>()
      func add(_ name: String, _ dtype: DType, _ shape: [Int], _ item: PickledItem) {
        specs.append(TensorSpec(name: name, dtype: dtype, shape: shape))
        items[ExactName(name)] = item
      }
      for entry in pickle.entries {
        switch entry.value {
        case .tensor(let tensor):
          // The same storage, offset, shape and strides as a tensor before it: a tied copy.
          if !views.insert(tensor).inserted && droppingTiedCopies { continue }
          add(entry.name, tensor.dtype, tensor.shape, .tensor(tensor))
          descriptions.append((entry.name, .plainTensor))
        case .subclass(let subclass):
          hasSubclass = true
          for part in subclass.parts {
            add(
              subclass.storedName(of: part, entry: entry.name), part.tensor.dtype, part.tensor.shape,
              .tensor(part.tensor))
          }
          descriptions.append((entry.name, subclass.description))
        case .affineQuantized(let weight):
          guard weight.shape.count == 2, let dtype = DType(rawValue: weight.dtype.rawValue) else {
            throw PipelineError(
              .invalidInput,
              "\(pickle.path): tensor '\(entry.name)': an AffineQuantizedTensor of shape \(weight.shape) in "
                + "\(weight.dtype.rawValue); only 2-D weights in a float format are dequantized",
              path: pickle.path, tensor: entry.name)
          }
          add(entry.name, dtype, weight.shape, .affineQuantized(weight))
          descriptions.append((entry.name, .plainTensor))
        }
      }
      presented.append((pickle, specs, items))
    }
    let metadata = hasSubclass ? TorchAOMetadata.encoded(entries: descriptions) : nil
    var files: [SafeTensorsFile] = []
    for (pickle, specs, items) in presented {
      do {
        let header = try SafeTensorsHeader(metadata: metadata, tensors: specs)
        files.append(
          SafeTensorsFile(presenting: pickle.path, header: header, source: PickleSource(pickle: pickle, items: items)))
      } catch {
        throw PipelineError(.invalidInput, "\(error)", path: pickle.path, tensor: error.tensor, cause: error)
      }
    }
    return files
  }
}

/// What a presented tensor reads.
private enum PickledItem: Sendable {
  case tensor(PickleTensor)
  case affineQuantized(AffineQuantizedTensor)
}

/// Reads the presented tensors of one pickle file: a contiguous tensor by one `pread` of its
/// range; any other by whole rows (a view gathered, a legacy weight dequantized), through a
/// buffer of the rows when the range does not start and end on a row.
private final class PickleSource: TensorByteSource {
  let pickle: PickleCheckpointFile
  let items: [ExactName: PickledItem]

  init(pickle: PickleCheckpointFile, items: [ExactName: PickledItem]) {
    self.pickle = pickle
    self.items = items
  }

  func scratchBytes(_ tensor: TensorInfo, count: Int) -> Int {
    switch items[ExactName(tensor.name)]! {
    case .tensor(let source):
      // A row the range starts or ends inside, and the extent of the rows a gather reads.
      guard source.contiguousByteRange == nil else { return 0 }
      return ReadScratch.bytes(source.rowByteCount) + source.scratchBytes(rows: count / max(source.rowByteCount, 1) + 2)
    case .affineQuantized(let weight):
      // The whole scales and zero points, a row the range starts or ends inside, the codes when
      // they are wider than the output; and what reading any of them takes.
      let rows = count / max(weight.outputRowByteCount, 1) + 2
      let codes = weight.dataRowByteCount <= weight.outputRowByteCount ? 0 : rows * weight.dataRowByteCount
      return ReadScratch.bytes(
        weight.scale.byteCount, weight.zeroPoint?.byteCount ?? 0, weight.outputRowByteCount, codes)
        + max(
          weight.data.scratchBytes(rows: rows), weight.scale.scratchBytes(rows: weight.scale.rowCount),
          weight.zeroPoint?.scratchBytes(rows: weight.zeroPoint!.rowCount) ?? 0)
    }
  }

  func read(
    _ tensor: TensorInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    guard !buffer.isEmpty else { return }
    do throws(PickleError) {
      switch items[ExactName(tensor.name)]! {
      case .tensor(let source):
        if let range = source.contiguousByteRange {
          try pickle.read(at: range.lowerBound + offset, into: buffer)
        } else {
          try readRows(offset: offset, into: buffer, rowBytes: source.rowByteCount, scratch: &scratch) {
            rows, output, scratch throws(PickleError) in
            try pickle.read(source, rows: rows, into: output, scratch: &scratch)
          }
        }
      case .affineQuantized(let weight):
        // The scales (one or a few per row) are read whole for each read: a small fraction of it.
        let scale = try whole(weight.scale, scratch: &scratch)
        let zeroPoint = try weight.zeroPoint.map { (part) throws(PickleError) in try whole(part, scratch: &scratch) }
        try readRows(offset: offset, into: buffer, rowBytes: weight.outputRowByteCount, scratch: &scratch) {
          rows, output, scratch throws(PickleError) in
          // The codes are read into the end of the output, which they fill no more than half of,
          // and dequantized in place (``AffineQuantizedTensor/dequantize`` reads each element
          // before it writes it, front to back); codes wider than the output get scratch.
          let codes = rows.count * weight.dataRowByteCount
          let data =
            weight.dataRowByteCount <= weight.outputRowByteCount
            ? UnsafeMutableRawBufferPointer(rebasing: output[(output.count - codes)...]) : scratch.take(codes)
          try pickle.read(weight.data, rows: rows, into: data, scratch: &scratch)
          try weight.dequantize(
            rows: rows, data: UnsafeRawBufferPointer(data), scale: scale, zeroPoint: zeroPoint, into: output)
        }
      }
    } catch {
      throw SafeTensorsError(.io, "\(error)", file: pickle.path, tensor: tensor.name)
    }
  }

  /// All of `tensor` (a scale or zero point), C-contiguous, in `scratch`.
  private func whole(_ tensor: PickleTensor, scratch: inout ReadScratch) throws(PickleError) -> UnsafeRawBufferPointer {
    let bytes = scratch.take(tensor.byteCount)
    try pickle.read(tensor, rows: 0..<tensor.rowCount, into: bytes, scratch: &scratch)
    return UnsafeRawBufferPointer(bytes)
  }

  func readingNote(of name: String) -> String? {
    switch items[ExactName(name)] {
    case .affineQuantized(let weight):
      "dequantized from an AffineQuantizedTensor (\(weight.layout.rawValue), \(weight.data.dtype.rawValue) data)"
    case .tensor(let tensor) where !tensor.isContiguous: "gathered from a view with strides \(tensor.strides)"
    default: nil
    }
  }

  /// Fills `buffer` with the bytes from `offset` of a tensor whose rows of `rowBytes` bytes
  /// `readRows` writes, whole rows at a time (each call given back what it took of `scratch`):
  /// the whole rows straight into `buffer`, a row that the range starts or ends inside through a
  /// buffer of one row.
  private func readRows(
    offset: Int, into buffer: UnsafeMutableRawBufferPointer, rowBytes: Int, scratch: inout ReadScratch,
    _ readRows: (Range<Int>, UnsafeMutableRawBufferPointer, inout ReadScratch) throws(PickleError) -> Void
  ) throws(PickleError) {
    let rowBytes = max(rowBytes, 1)
    var row: UnsafeMutableRawBufferPointer?
    var position = offset
    var written = 0
    while written < buffer.count {
      let index = position / rowBytes
      let start = position - index * rowBytes
      let whole = (buffer.count - written) / rowBytes
      if start == 0 && whole > 0 {
        let bytes = whole * rowBytes
        try scratch.scoped { (scratch) throws(PickleError) in
          try readRows(
            index..<index + whole, UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + bytes]), &scratch)
        }
        position += bytes
        written += bytes
      } else {
        let partial = row ?? scratch.take(rowBytes)
        row = partial
        try scratch.scoped { (scratch) throws(PickleError) in try readRows(index..<index + 1, partial, &scratch) }
        let count = min(rowBytes - start, buffer.count - written)
        UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + count])
          .copyMemory(from: UnsafeRawBufferPointer(rebasing: partial[start..<start + count]))
        position += count
        written += count
      }
    }
  }
}

extension Checkpoint {
  /// Opens INPUT as a conversion reads it: a PyTorch pickle checkpoint through ``PickleInput``,
  /// anything else as safetensors; with `dequantizing`, a model directory quantized to FP8 or
  /// MXFP4 by another tool (``QuantizedInput``) as its dequantized bfloat16 values, and a torchao
  /// checkpoint (``TorchAOInput``) as its dequantized values in each weight's dtype.
  ///
  /// - Throws: ``PipelineError`` for a pickle checkpoint or a quantized input that is refused,
  ///   ``SafeTensorsError`` for safetensors.
  public static func input(at path: String, dequantizing: Bool = false) throws -> Checkpoint {
    let checkpoint = PickleInput.isPickle(path) ? try PickleInput.open(path) : try Checkpoint(path: path)
    return dequantizing ? try checkpoint.dequantized() : checkpoint
  }

  /// This checkpoint as a recipe that quantizes or dequantizes reads it: a model directory
  /// quantized to FP8 or MXFP4 by another tool (``QuantizedInput``) or a torchao checkpoint
  /// (``TorchAOInput``) as its dequantized values; any other as it is.
  ///
  /// - Throws: ``PipelineError`` for a quantized input that is refused.
  public func dequantized() throws(PipelineError) -> Checkpoint {
    try QuantizedInput.open(self) ?? self
  }
}
