import Foundation
import Quantization
import SafeTensors
import TorchAO

/// A torchao safetensors checkpoint (a model directory saved by transformers with a
/// `TorchAoConfig`, or any file whose `__metadata__` describes torchao tensor subclasses)
/// presented to the rest of the pipeline as its dequantized checkpoint: every quantized weight's
/// parts become one plain tensor in the weight's own dtype (the `dtype` or `orig_dtype` torchao
/// records; the scale's for Int4Tensor), under the weight's stored name; every other tensor is
/// itself, and the torchao entries leave the `__metadata__`.
///
/// Each weight is read chunk by chunk: a range of rows reads only the qdata rows, the scale and
/// zero-point rows (or the 128-row tiles of swizzled MX and NVFP4 scales) that cover them, and the
/// small parts that do not follow rows whole (a per-tensor scale, Int4's transposed scales and
/// zero points, Float8's per-column scales, NVFP4's per-tensor scales). The values are the
/// scheme's ``QuantizationScheme/dequantize(rows:shape:parts:into:)``: torchao 0.18's
/// `dequantize()` bit for bit, and for Int4Tensor, which has none, the spec's
/// `R_dt(q ⊗ scale ⊕ zero)`. Every subclass safeshard decodes is row separable, so none is read
/// whole.
///
/// Used for the recipes that quantize and for `dequantize`; `reshard` copies a torchao checkpoint
/// as it is stored. A torchao pickle (``PickleInput`` presents its subclasses as torchao's parts
/// and metadata) is read the same way.
enum TorchAOInput {
  /// The dequantizing presentation of the torchao checkpoint `checkpoint`
  /// (``TorchAOCheckpoint/hasTorchAOMetadata(_:)``).
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming the tensor (and its file) when the
  ///   metadata or a weight's parts do not decode: a missing or stray part, a part of the wrong
  ///   dtype or shape, a `block_size` that does not tile the shape, or a subclass safeshard cannot
  ///   decode.
  static func open(_ checkpoint: Checkpoint) throws(PipelineError) -> Checkpoint {
    let storedName = TorchAOCheckpoint.storedNames(ofModelAt: checkpoint.path)
    let decoded: TorchAOCheckpoint
    do {
      decoded = try TorchAOCheckpoint(checkpoint, storedName: storedName)
    } catch {
      let path = error.file ?? checkpoint.path
      throw PipelineError(
        .invalidInput, "\(path): \(error.tensor.map { "tensor '\($0)': " } ?? "")\(error.message)", path: path,
        tensor: error.tensor, cause: error)
    }
    // Each weight takes the place of its qdata part; its other parts are left out.
    var weights: [ExactName: DequantizedWeight] = [:]
    var leftOut = Set<ExactName>()
    for weight in decoded.weights {
      let qdata = weight.parts[.qdata]!.tensor.name
      for part in weight.parts.values where part.tensor.name != qdata { leftOut.insert(ExactName(part.tensor.name)) }
      weights[ExactName(qdata)] = DequantizedWeight(weight: weight, name: storedName(weight.name))
    }
    let described = Set(decoded.metadata.entries.map { ExactName($0.name) })
    var files: [SafeTensorsFile] = []
    for file in checkpoint.files {
      var specs: [TensorSpec] = []
      var items: [ExactName: TorchAOSource.Item] = [:]
      for tensor in file.header.tensors where !leftOut.contains(ExactName(tensor.name)) {
        if let weight = weights[ExactName(tensor.name)] {
          specs.append(TensorSpec(name: weight.name, dtype: weight.dtype, shape: weight.weight.shape))
          items[ExactName(weight.name)] = .dequantized(weight)
        } else {
          specs.append(TensorSpec(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape))
          items[ExactName(tensor.name)] = .copied(tensor)
        }
      }
      // What is left of the metadata once the torchao entries are gone (transformers' "format"),
      // none when nothing is.
      let kept = file.header.metadata?.filter { $0.key != "tensor_names" && !described.contains(ExactName($0.key)) }
      let metadata = kept?.isEmpty == false ? kept : nil
      do {
        let header = try SafeTensorsHeader(metadata: metadata, tensors: specs)
        files.append(
          SafeTensorsFile(presenting: file.path, header: header, source: TorchAOSource(file: file, items: items)))
      } catch {
        throw PipelineError(.invalidInput, "\(error)", path: file.path, tensor: error.tensor, cause: error)
      }
    }
    do {
      // A torchao pickle keeps its name (`torchao pickle`).
      let format = checkpoint.format == "safetensors" ? "torchao" : checkpoint.format
      return try Checkpoint(path: checkpoint.path, presenting: files, format: format, dequantized: true)
    } catch {
      throw PipelineError(
        .invalidInput, "\(error)", path: error.file ?? checkpoint.path, tensor: error.tensor, cause: error)
    }
  }
}

/// One torchao weight read as its dequantized values.
struct DequantizedWeight: Sendable {
  var weight: QuantizedWeight
  /// The presented name: the weight's stored name.
  var name: String
  var layout: QuantizedLayout { weight.layout }
  var dtype: DType { DType(rawValue: weight.scheme.source.rawValue)! }
}

/// Reads the presented tensors of one file of a torchao checkpoint: a copied tensor from the file
/// itself, a weight dequantized from the part bytes of the rows the range covers.
private final class TorchAOSource: TensorByteSource {
  enum Item: Sendable {
    case copied(TensorInfo)
    case dequantized(DequantizedWeight)
  }

  let file: SafeTensorsFile
  let items: [ExactName: Item]
  /// The elements dequantized at a time (at least one row): what a read holds beyond its buffer
  /// is their qdata and scales, and their values when the range starts or ends inside them.
  static let pieceElements = 1 << 20

  init(file: SafeTensorsFile, items: [ExactName: Item]) {
    self.file = file
    self.items = items
  }

  func scratchBytes(_ tensor: TensorInfo, count: Int) -> Int {
    switch items[ExactName(tensor.name)]! {
    case .copied(let stored): return file.scratchBytes(stored, count: count)
    case .dequantized(let weight):
      // The parts read whole, a piece for a range that starts or ends inside one, and a piece's
      // row parts but its qdata (which goes into the piece's output); and what reading a part
      // takes.
      let layout = weight.layout
      let rowBytes = layout.rowLength * weight.weight.scheme.source.byteWidth
      // A range of `count` bytes touches at most `count / rowBytes + 2` rows.
      let rowsPerPiece = Self.rowsPerPiece(layout, rows: count / max(rowBytes, 1) + 2)
      var taken = [rowsPerPiece * rowBytes]
      var inner = 0
      for part in layout.parts {
        let bytes: Int
        switch part.placement {
        case .gathered, .tensor: bytes = part.byteCount
        case .rows(let bytesPerRow): bytes = min(part.byteCount, rowsPerPiece * bytesPerRow)
        case .tiles(let rowsPerTile, let bytesPerTile):
          bytes = min(part.byteCount, (rowsPerPiece / rowsPerTile + 2) * bytesPerTile)
        }
        if part.name != .qdata || part.placement == .gathered || part.placement == .tensor { taken.append(bytes) }
        let stored = weight.weight.parts[part.name]!
        inner = max(inner, stored.file.scratchBytes(stored.tensor, count: bytes))
      }
      return taken.reduce(0) { $0 + ReadScratch.bytes($1) } + inner
    }
  }

  func read(
    _ tensor: TensorInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    guard !buffer.isEmpty else { return }
    switch items[ExactName(tensor.name)]! {
    case .copied(let stored): try file.read(stored, at: offset, into: buffer, scratch: &scratch)
    case .dequantized(let weight): try read(weight, at: offset, into: buffer, scratch: &scratch)
    }
  }

  /// The bytes `offset ..< offset + buffer.count` of the dequantized weight, a piece of whole rows
  /// at a time: straight into `buffer` when the piece lies inside the range, else through a
  /// buffer of the piece.
  private func read(
    _ weight: DequantizedWeight, at offset: Int, into buffer: UnsafeMutableRawBufferPointer,
    scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    let layout = weight.layout
    let rowBytes = layout.rowLength * weight.weight.scheme.source.byteWidth
    let end = offset + buffer.count
    let rows = offset / rowBytes..<(end + rowBytes - 1) / rowBytes
    let rowsPerPiece = Self.rowsPerPiece(layout, rows: rows.count)
    // The parts that do not follow rows are read once for the whole range.
    var whole: [PartName: UnsafeMutableRawBufferPointer] = [:]
    for part in layout.parts where part.placement == .gathered || part.placement == .tensor {
      let bytes = scratch.take(part.byteCount)
      whole[part.name] = bytes
      try read(part.name, of: weight, bytes: 0..<part.byteCount, into: bytes, scratch: &scratch)
    }
    var staging: UnsafeMutableRawBufferPointer?
    for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerPiece) {
      let piece = first..<min(first + rowsPerPiece, rows.upperBound)
      let bytes = piece.lowerBound * rowBytes..<piece.upperBound * rowBytes
      let inside = bytes.lowerBound >= offset && bytes.upperBound <= end
      let output: UnsafeMutableRawBufferPointer
      if inside {
        output = UnsafeMutableRawBufferPointer(
          rebasing: buffer[bytes.lowerBound - offset..<bytes.upperBound - offset])
      } else {
        if staging == nil { staging = scratch.take(rowsPerPiece * rowBytes) }
        output = UnsafeMutableRawBufferPointer(rebasing: staging![0..<bytes.count])
      }
      // The qdata rows are read into the end of the output, which they fill no more than half of
      // (a byte or half a byte an element, against two or four): the schemes write an element
      // only after reading the codes up to it, so no buffer of their own, no page to fault in.
      // The scale rows are a small fraction of that.
      try scratch.scoped { (scratch) throws(SafeTensorsError) in
        var parts: [PartName: UnsafeRawBufferPointer] = [:]
        for part in layout.parts {
          let range = part.readRange(rows: piece)
          if let bytes = whole[part.name] {
            parts[part.name] = UnsafeRawBufferPointer(bytes)
          } else if part.name == .qdata {
            let codes = UnsafeMutableRawBufferPointer(rebasing: output[(output.count - range.count)...])
            try self.read(part.name, of: weight, bytes: range, into: codes, scratch: &scratch)
            parts[part.name] = UnsafeRawBufferPointer(codes)
          } else {
            let bytes = scratch.take(range.count)
            try self.read(part.name, of: weight, bytes: range, into: bytes, scratch: &scratch)
            parts[part.name] = UnsafeRawBufferPointer(bytes)
          }
        }
        do {
          try weight.weight.scheme.dequantize(rows: piece, shape: weight.weight.shape, parts: parts, into: output)
        } catch {
          throw SafeTensorsError(.io, "cannot dequantize: \(error)", file: file.path, tensor: weight.name)
        }
      }
      if !inside {
        let copied = max(bytes.lowerBound, offset)..<min(bytes.upperBound, end)
        UnsafeMutableRawBufferPointer(rebasing: buffer[copied.lowerBound - offset..<copied.upperBound - offset])
          .copyMemory(
            from: UnsafeRawBufferPointer(
              rebasing: output[copied.lowerBound - bytes.lowerBound..<copied.upperBound - bytes.lowerBound]))
      }
    }
  }

  /// The rows of a piece of a read that touches `rows` rows: ``pieceElements`` of them, at least
  /// one row, and no more than the read touches.
  private static func rowsPerPiece(_ layout: QuantizedLayout, rows: Int) -> Int {
    min(max(1, pieceElements / layout.rowLength), rows)
  }

  /// Reads the bytes `bytes` of the weight's part `name` into `buffer`.
  private func read(
    _ name: PartName, of weight: DequantizedWeight, bytes: Range<Int>, into buffer: UnsafeMutableRawBufferPointer,
    scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    let part = weight.weight.parts[name]!
    try part.file.read(part.tensor, at: bytes.lowerBound, into: buffer, scratch: &scratch)
  }

  func readingNote(of name: String) -> String? {
    guard case .dequantized(let weight) = items[ExactName(name)] else { return nil }
    let parts = weight.layout.parts.map { layout in
      let part = weight.weight.parts[layout.name]!.tensor
      return "\(part.name) \(part.dtype.rawValue) \(part.shape)"
    }
    return "dequantized from torchao \(weight.weight.summary): \(parts.joined(separator: ", "))"
  }
}
