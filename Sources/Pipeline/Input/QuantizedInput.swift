import Foundation
import Quantization
import SafeTensors
import TorchAO

/// A safetensors model directory quantized to FP8 or MXFP4 by another tool, presented to the rest
/// of the pipeline as its dequantized bfloat16 checkpoint: every quantized weight with its scales
/// becomes one BF16 tensor, the scale tensors (and compressed-tensors' `input_scale`) disappear,
/// and every other tensor is itself. The conversion then reads it like any bfloat16 input, chunk
/// by chunk; each chunk is dequantized from the quantized bytes and the scales it covers when it
/// is read.
///
/// Recognised from `config.json`'s `quantization_config` and the tensor names:
///
/// - block-scaled FP8 (DeepSeek-V3/R1, Kimi-K2, Qwen3 "-FP8"): `quant_method: fp8` with
///   `weight_block_size: [BM, BN]`; each `X.weight` (F8_E4M3, [M, N]) has
///   `X.weight_scale_inv` (F32, BF16 or F16) of shape [ceil(M/BM), ceil(N/BN)].
/// - compressed-tensors FP8 (llm-compressor): `quant_method: compressed-tensors`,
///   `format: float-quantized`, symmetric 8-bit float weights; each `X.weight` has
///   `X.weight_scale` (F32, BF16 or F16) of shape [1] or [] (strategy `tensor`), [M, 1] (`channel`)
///   or the block grid of the config's `block_structure` (`block`).
/// - gpt-oss MXFP4: `quant_method: mxfp4`; each `X_blocks` (U8 [E, out, G, 16]) with `X_scales`
///   (U8 [E, out, G]) becomes `X`, BF16 [E, G·32, out] (transformers' `convert_moe_packed_tensors`).
///
/// The FP8 rule: `W[i, j] = RNE_bf16(Float32(e4m3fn(w[i, j])) ×_f32 Float32(s[i / BM, j / BN]))`,
/// one Float32 multiply then round-to-nearest-even to bfloat16, the block always from the config
/// (a per-tensor scale is one block of the whole weight, a per-channel scale a block of one
/// row); the edge blocks of a shape that is not a multiple of the block reuse their block's
/// scale. This is DeepSeek's `weight_dequant` kernel, and compressed-tensors' `dequantize`
/// (`x.to(scale.dtype) * scale`, then the model's bfloat16) for F32 and BF16 scales. With F16
/// scales compressed-tensors' product is rounded to float16 first (torch's fp16 multiply:
/// the exact product, which fits in Float32, rounded once), then to the model's dtype: the
/// weight is F16 for a float16 model (`torch_dtype`), else `RNE_bf16(RNE_f16(product))`.
enum QuantizedInput {
  /// One float8 weight and its scales.
  struct ScaledWeight: Sendable {
    var weight: TensorInfo
    var weightFile: SafeTensorsFile
    var scale: TensorInfo
    var scaleFile: SafeTensorsFile
    var scaleFormat: FloatFormat
    /// What the Float32 product is rounded to first: itself for block FP8 (DeepSeek's kernel
    /// multiplies in Float32), the scale's format for compressed-tensors (`x.to(scale.dtype) *
    /// scale`).
    var product: FloatFormat
    /// The presented dtype, BF16 or F16, to which the product is then rounded.
    var output: FloatFormat
    /// The rows and columns one scale covers.
    var block: (rows: Int, columns: Int)
    var rows: Int { weight.shape[0] }
    var columns: Int { weight.shape[1] }
    /// The number of scale columns.
    var gridColumns: Int { (columns + block.columns - 1) / block.columns }
    /// Whether the elements go through a table of the 256 codes' results per scale (an F16
    /// product or output) rather than ``Float8Dequantization``'s lanes (BF16 output, whose
    /// product rounded to BF16 first changes nothing).
    var dequantizesByTable: Bool { output != .bf16 || product == .fp16 }
  }

  /// The MXFP4 experts of one gpt-oss projection.
  struct MXFP4Experts: Sendable {
    var blocks: TensorInfo
    var blocksFile: SafeTensorsFile
    var scales: TensorInfo
    var scalesFile: SafeTensorsFile
    var experts: Int { blocks.shape[0] }
    /// The output features (`out`), the rows of the packed form.
    var outputs: Int { blocks.shape[1] }
    /// The 32-value groups of a row.
    var groups: Int { blocks.shape[2] }
    /// The input features (`in`): 32 a group.
    var inputs: Int { groups * 32 }
  }

  /// A recognised format: its name as `plan` and `inspect` show it, the name of a weight's scale
  /// tensor, the other per-module tensors that are dropped, and how a weight's block follows
  /// from its scale's shape.
  private struct Format {
    var name: String
    var scaleName: String
    var dropped: [String]
    var scaleFormats: [DType]
    /// Whether the product is rounded to the scale's format before the output's.
    var productInScaleFormat: Bool
    /// The presented dtype of the dequantized weights.
    var output: FloatFormat
    var block: (_ weight: [Int], _ scale: [Int]) -> (rows: Int, columns: Int)
  }

  /// The dequantizing presentation of `checkpoint`, when it is a model directory whose
  /// `config.json` declares a format this type recognises, or a torchao checkpoint (its files'
  /// metadata say so; ``TorchAOInput``); `nil` when it is neither (``QuantizingInputCheck`` says
  /// what is refused).
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming `config.json` when the declared format
  ///   is one safeshard does not dequantize (another FP8 layout, asymmetric, fp16 scales), or
  ///   naming the tensor when a weight has no scale or its scale has the wrong shape or type.
  static func open(_ checkpoint: Checkpoint) throws(PipelineError) -> Checkpoint? {
    if TorchAOCheckpoint.hasTorchAOMetadata(checkpoint) { return try TorchAOInput.open(checkpoint) }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: checkpoint.path, isDirectory: &isDirectory), isDirectory.boolValue,
      let config = MoEArchitecture.modelConfig(in: checkpoint.path),
      let quantization = config["quantization_config"], quantization != .null
    else { return nil }
    let configPath = join(checkpoint.path, "config.json")
    let format: Format
    switch quantization["quant_method"]?.string {
    case "fp8": format = try blockFP8(quantization, configPath: configPath)
    case "compressed-tensors": format = try compressedTensors(quantization, config: config, configPath: configPath)
    case "mxfp4": return try presentMXFP4(checkpoint)
    default: return nil
    }
    return try present(checkpoint, format: format)
  }

  private static func refusal(_ path: String, _ message: String, tensor: String? = nil) -> PipelineError {
    PipelineError(
      .invalidInput, "\(path): \(tensor.map { "tensor '\($0)': " } ?? "")\(message)", path: path, tensor: tensor)
  }

  /// `[BM, BN]` of `value`, two positive integers.
  private static func blockSize(_ value: JSONValue?) -> (rows: Int, columns: Int)? {
    guard let values = value?.array, values.count == 2,
      let rows = values[0].uint64.map(Int.init), let columns = values[1].uint64.map(Int.init), rows > 0, columns > 0
    else { return nil }
    return (rows, columns)
  }

  private static func blockFP8(_ quantization: JSONValue, configPath: String) throws(PipelineError) -> Format {
    guard let block = blockSize(quantization["weight_block_size"]) else {
      throw refusal(
        configPath,
        "quantization_config (quant_method fp8) has no weight_block_size of two positive integers; safeshard "
          + "dequantizes block-scaled FP8 only, with the block size its config gives")
    }
    if let fmt = quantization["fmt"]?.string, fmt != "e4m3" {
      throw refusal(configPath, "quantization_config says fmt \(fmt); safeshard dequantizes e4m3 weights only")
    }
    return Format(
      name: "FP8 block-scaled (weight_block_size [\(block.rows), \(block.columns)])", scaleName: "weight_scale_inv",
      dropped: [], scaleFormats: [.f32, .bf16, .f16], productInScaleFormat: false, output: .bf16,
      block: { _, _ in block })
  }

  /// compressed-tensors' weights are dequantized in the scale's dtype and then take the model's
  /// (`torch_dtype`, or transformers 5's `dtype`): F16 for a float16 model, else BF16.
  private static func compressedTensors(_ quantization: JSONValue, config: JSONValue, configPath: String)
    throws(PipelineError) -> Format
  {
    let output: FloatFormat = (config["torch_dtype"] ?? config["dtype"])?.string == "float16" ? .fp16 : .bf16
    let format = quantization["format"]?.string ?? "none"
    guard format == "float-quantized" else {
      throw refusal(
        configPath,
        "quantization_config is compressed-tensors with format \(format); safeshard dequantizes float-quantized "
          + "(FP8) weights only")
    }
    if let status = quantization["quantization_status"]?.string, status != "compressed" {
      throw refusal(configPath, "quantization_config says quantization_status \(status), not compressed")
    }
    if let kvCache = quantization["kv_cache_scheme"], kvCache != .null {
      throw refusal(configPath, "quantization_config has a kv_cache_scheme; safeshard does not drop KV-cache scales")
    }
    var blocks: [(rows: Int, columns: Int)] = []
    for group in quantization["config_groups"]?.members ?? [] {
      guard let weights = group.value["weights"], weights != .null else { continue }
      guard weights["type"]?.string == "float", weights["num_bits"]?.uint64 == 8 else {
        throw refusal(configPath, "config group \(group.key) quantizes weights to something other than 8-bit float")
      }
      guard weights["symmetric"] != .bool(false) else {
        throw refusal(
          configPath, "config group \(group.key) is asymmetric (weight_zero_point); safeshard dequantizes symmetric FP8"
        )
      }
      let strategy = weights["strategy"]?.string ?? "none"
      switch strategy {
      case "tensor", "channel": break
      case "block":
        guard let block = blockSize(weights["block_structure"]) else {
          throw refusal(configPath, "config group \(group.key) has strategy block without a block_structure [BM, BN]")
        }
        blocks.append(block)
      default:
        throw refusal(
          configPath,
          "config group \(group.key) has weight strategy \(strategy); safeshard dequantizes tensor, channel and block")
      }
    }
    if let first = blocks.first, blocks.contains(where: { $0 != first }) {
      throw refusal(configPath, "the config groups give different block_structure values; the blocks are ambiguous")
    }
    let block = blocks.first
    return Format(
      name: "compressed-tensors FP8 (float-quantized)", scaleName: "weight_scale", dropped: ["input_scale"],
      scaleFormats: [.f32, .bf16, .f16], productInScaleFormat: true, output: output,
      block: { weight, scale in
        if scale.reduce(1, *) == 1 { return (weight[0], weight[1]) }
        if scale == [weight[0], 1] { return (1, weight[1]) }
        // Block strategy; without one in the config the grid check refuses the scale.
        return block ?? (weight[0], weight[1])
      })
  }

  /// The presented checkpoint of an FP8 format: float8 weights as BF16 (F16 for compressed-tensors
  /// of a float16 model), scales and dropped tensors left out.
  private static func present(_ checkpoint: Checkpoint, format: Format) throws(PipelineError) -> Checkpoint {
    func module(_ name: String, ending suffix: String) -> String? {
      name.hasSuffix("." + suffix) ? String(name.dropLast(suffix.count + 1)) : nil
    }
    var replacements: [ExactName: (name: String, dtype: DType, shape: [Int], item: DequantizingSource.Item)] = [:]
    var leftOut = Set<ExactName>()
    for (scale, scaleFile) in checkpoint.tensors {
      if let module = format.dropped.lazy.compactMap({ module(scale.name, ending: $0) }).first,
        checkpoint.location(of: module + ".weight") != nil
      {
        leftOut.insert(ExactName(scale.name))
        continue
      }
      guard let module = module(scale.name, ending: format.scaleName) else { continue }
      let weightName = module + ".weight"
      guard let (weight, weightFile, _) = checkpoint.location(of: weightName) else {
        throw refusal(scaleFile.path, "\(scale.name) has no weight \(weightName) to scale", tensor: scale.name)
      }
      guard weight.dtype == .f8e4m3, weight.shape.count == 2 else {
        throw refusal(
          weightFile.path,
          "\(weightName) is \(weight.dtype.rawValue) \(weight.shape) beside \(scale.name); safeshard dequantizes 2-D "
            + "float8_e4m3fn weights", tensor: weightName)
      }
      guard format.scaleFormats.contains(scale.dtype), let scaleFormat = FloatFormat(rawValue: scale.dtype.rawValue)
      else {
        let floating = [DType.f32, .bf16, .f16, .f64].contains(scale.dtype)
        throw refusal(
          scaleFile.path,
          "\(scale.name) is \(torchName(scale.dtype)), "
            + (floating
              ? "not one of \(format.scaleFormats.map { torchName($0) }.joined(separator: ", "))"
              : "not a float type"),
          tensor: scale.name)
      }
      let block = format.block(weight.shape, scale.shape)
      let grid = [
        (weight.shape[0] + block.rows - 1) / block.rows, (weight.shape[1] + block.columns - 1) / block.columns,
      ]
      let perTensor = grid == [1, 1] && scale.shape.reduce(1, *) == 1 && scale.shape.count <= 2
      guard scale.shape == grid || perTensor else {
        throw refusal(
          scaleFile.path,
          "\(scale.name) is \(scale.shape); \(weight.shape) in blocks of [\(block.rows), \(block.columns)] needs "
            + "\(grid)", tensor: scale.name)
      }
      leftOut.insert(ExactName(scale.name))
      replacements[ExactName(weightName)] = (
        weightName, DType(rawValue: format.output.rawValue)!, weight.shape,
        .fp8(
          ScaledWeight(
            weight: weight, weightFile: weightFile, scale: scale, scaleFile: scaleFile, scaleFormat: scaleFormat,
            product: format.productInScaleFormat ? scaleFormat : .fp32, output: format.output, block: block))
      )
    }
    return try present(checkpoint, format: format.name, replacing: replacements, leavingOut: leftOut) { tensor in
      guard tensor.dtype == .f8e4m3 || tensor.dtype == .f8e5m2, tensor.shape.count >= 2 else { return nil }
      return "\(tensor.name) is \(torchName(tensor.dtype)) and has no "
        + "\(module(tensor.name, ending: "weight").map { $0 + "." + format.scaleName } ?? format.scaleName)"
    }
  }

  /// gpt-oss's MXFP4 experts: each `X_blocks` (U8 [E, out, G, 16], two e2m1 values a byte, the
  /// even one in the low nibble) with `X_scales` (U8 [E, out, G], E8M0) becomes `X`, BF16
  /// [E, G·32, out]: transformers' `convert_moe_packed_tensors`, its `[E, in, out]` layout.
  private static func presentMXFP4(_ checkpoint: Checkpoint) throws(PipelineError) -> Checkpoint {
    var replacements: [ExactName: (name: String, dtype: DType, shape: [Int], item: DequantizingSource.Item)] = [:]
    var leftOut = Set<ExactName>()
    for (blocks, blocksFile) in checkpoint.tensors where blocks.name.hasSuffix("_blocks") {
      let name = String(blocks.name.dropLast("_blocks".count))
      guard let (scales, scalesFile, _) = checkpoint.location(of: name + "_scales") else {
        throw refusal(blocksFile.path, "\(blocks.name) has no \(name)_scales", tensor: blocks.name)
      }
      guard blocks.dtype == .u8, blocks.shape.count == 4, blocks.shape[3] == 16 else {
        throw refusal(
          blocksFile.path, "\(blocks.name) is \(blocks.dtype.rawValue) \(blocks.shape), not U8 [E, out, G, 16]",
          tensor: blocks.name)
      }
      guard scales.dtype == .u8, scales.shape == Array(blocks.shape.prefix(3)) else {
        throw refusal(
          scalesFile.path,
          "\(scales.name) is \(scales.dtype.rawValue) \(scales.shape); \(blocks.name) \(blocks.shape) needs U8 "
            + "\(Array(blocks.shape.prefix(3)))", tensor: scales.name)
      }
      leftOut.insert(ExactName(scales.name))
      let experts = MXFP4Experts(blocks: blocks, blocksFile: blocksFile, scales: scales, scalesFile: scalesFile)
      replacements[ExactName(blocks.name)] = (
        name, .bf16, [experts.experts, experts.inputs, experts.outputs], .mxfp4(experts)
      )
    }
    return try present(
      checkpoint, format: "MXFP4 (gpt-oss experts)", replacing: replacements, leavingOut: leftOut
    ) { tensor in
      tensor.name.hasSuffix("_scales") && tensor.dtype == .u8
        ? "\(tensor.name) has no \(tensor.name.dropLast("_scales".count))_blocks" : nil
    }
  }

  /// The presented checkpoint: each file's tensors in their order, a replaced one as the BF16
  /// tensor that replaces it, those `leavingOut` names left out; `refusal` says why a tensor
  /// left as it is cannot be (`nil`: it is copied).
  private static func present(
    _ checkpoint: Checkpoint, format: String,
    replacing replacements: [ExactName: (name: String, dtype: DType, shape: [Int], item: DequantizingSource.Item)],
    leavingOut leftOut: Set<ExactName>, refusal unconverted: (TensorInfo) -> String?
  ) throws(PipelineError) -> Checkpoint {
    var files: [SafeTensorsFile] = []
    for file in checkpoint.files {
      var specs: [TensorSpec] = []
      var items: [ExactName: DequantizingSource.Item] = [:]
      for tensor in file.header.tensors where !leftOut.contains(ExactName(tensor.name)) {
        if let replacement = replacements[ExactName(tensor.name)] {
          specs.append(TensorSpec(name: replacement.name, dtype: replacement.dtype, shape: replacement.shape))
          items[ExactName(replacement.name)] = replacement.item
        } else if let message = unconverted(tensor) {
          throw refusal(file.path, message, tensor: tensor.name)
        } else {
          specs.append(TensorSpec(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape))
          items[ExactName(tensor.name)] = .copied(tensor)
        }
      }
      do {
        let header = try SafeTensorsHeader(metadata: file.header.metadata, tensors: specs)
        files.append(
          SafeTensorsFile(presenting: file.path, header: header, source: DequantizingSource(file: file, items: items)))
      } catch {
        throw PipelineError(.invalidInput, "\(error)", path: file.path, tensor: error.tensor, cause: error)
      }
    }
    do {
      return try Checkpoint(path: checkpoint.path, presenting: files, format: format, dequantized: true)
    } catch {
      throw PipelineError(
        .invalidInput, "\(error)", path: error.file ?? checkpoint.path, tensor: error.tensor, cause: error)
    }
  }

  /// torch's name of `dtype`, as the messages of transformers and torch write it.
  static func torchName(_ dtype: DType) -> String {
    switch dtype {
    case .f8e4m3: "float8_e4m3fn"
    case .f8e5m2: "float8_e5m2"
    case .f32: "float32"
    case .bf16: "bfloat16"
    case .f16: "float16"
    case .f64: "float64"
    case .i32: "int32"
    case .i64: "int64"
    case .i16: "int16"
    case .i8: "int8"
    case .u8: "uint8"
    default: dtype.rawValue
    }
  }
}

/// Reads the presented tensors of one file: a copied tensor from the file itself, a dequantized
/// weight from its float8 bytes and the scale rows the range covers.
private final class DequantizingSource: TensorByteSource {
  enum Item: Sendable {
    case copied(TensorInfo)
    case fp8(QuantizedInput.ScaledWeight)
    case mxfp4(QuantizedInput.MXFP4Experts)
  }

  let file: SafeTensorsFile
  let items: [ExactName: Item]
  /// The elements read and dequantized at a time (their codes go into the second half of their
  /// own output).
  static let pieceElements = 1 << 20
  /// The elements of a piece of a range that starts or ends inside an element, which goes
  /// through scratch of its own.
  static let unalignedPieceElements = 1 << 12

  init(file: SafeTensorsFile, items: [ExactName: Item]) {
    self.file = file
    self.items = items
  }

  func scratchBytes(_ tensor: TensorInfo, count: Int) -> Int {
    let elements = min(Self.pieceElements, count / 2 + 1)
    // The piece of a range that starts or ends inside an element.
    let unaligned = 2 * min(Self.unalignedPieceElements, count / 2 + 1)
    switch items[ExactName(tensor.name)]! {
    case .copied(let stored): return file.scratchBytes(stored, count: count)
    case .fp8(let weight):
      // That piece; the scale rows a piece spans and, by table, their results; and what reading
      // the codes or the scales takes.
      let scaleBytes =
        ((elements / weight.columns + 1) / weight.block.rows + 2) * weight.gridColumns
        * weight.scaleFormat.byteWidth
      let table = weight.dequantizesByTable ? 2 * 256 * weight.gridColumns : 0
      return ReadScratch.bytes(unaligned, scaleBytes, table)
        + max(
          weight.weightFile.scratchBytes(weight.weight, count: elements),
          weight.scaleFile.scratchBytes(weight.scale, count: scaleBytes))
    case .mxfp4(let experts):
      // That piece, and of one expert the scales and the packed groups of every output row that
      // a piece's input features fall in; and what reading them takes.
      let groups = min(experts.groups, (elements / experts.outputs + 2) / 32 + 2)
      let (scales, blocks) = (experts.outputs * experts.groups, experts.outputs * groups * 16)
      return ReadScratch.bytes(unaligned, scales, blocks)
        + max(
          experts.scalesFile.scratchBytes(experts.scales, count: scales),
          experts.blocksFile.scratchBytes(experts.blocks, count: blocks))
    }
  }

  func read(
    _ tensor: TensorInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    guard !buffer.isEmpty else { return }
    switch items[ExactName(tensor.name)]! {
    case .copied(let stored):
      try file.read(stored, at: offset, into: buffer, scratch: &scratch)
    case .fp8, .mxfp4:
      let item = items[ExactName(tensor.name)]!
      // The bfloat16 elements that cover the range, a piece at a time; a range that starts or
      // ends inside an element (never a conversion's) goes through a buffer of a smaller piece.
      let aligned = offset % 2 == 0 && buffer.count % 2 == 0
      let elements = offset / 2..<(offset + buffer.count + 1) / 2
      let step = aligned ? Self.pieceElements : Self.unalignedPieceElements
      let pieces = stride(from: elements.lowerBound, to: elements.upperBound, by: step).map {
        $0..<min($0 + step, elements.upperBound)
      }
      guard aligned else {
        let whole = scratch.take(2 * pieces[0].count)
        for piece in pieces {
          try dequantize(
            item, elements: piece, into: UnsafeMutableRawBufferPointer(rebasing: whole[0..<2 * piece.count]),
            scratch: &scratch)
          let bytes = max(2 * piece.lowerBound, offset)..<min(2 * piece.upperBound, offset + buffer.count)
          UnsafeMutableRawBufferPointer(rebasing: buffer[bytes.lowerBound - offset..<bytes.upperBound - offset])
            .copyMemory(
              from: UnsafeRawBufferPointer(
                rebasing: whole[bytes.lowerBound - 2 * piece.lowerBound..<bytes.upperBound - 2 * piece.lowerBound]))
        }
        return
      }
      for piece in pieces {
        try dequantize(
          item, elements: piece,
          into: UnsafeMutableRawBufferPointer(
            rebasing: buffer[2 * piece.lowerBound - offset..<2 * piece.upperBound - offset]),
          scratch: &scratch)
      }
    }
  }

  /// Writes the bfloat16 values of `elements` (row-major positions in the presented tensor) of
  /// the dequantized `item` into `output`, working in `scratch`.
  private func dequantize(
    _ item: Item, elements: Range<Int>, into output: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    try scratch.scoped { (scratch) throws(SafeTensorsError) in
      switch item {
      case .copied: preconditionFailure("a copied tensor is read as it is")
      case .fp8(let weight): try dequantize(weight, elements: elements, into: output, scratch: &scratch)
      case .mxfp4(let experts): try dequantize(experts, elements: elements, into: output, scratch: &scratch)
      }
    }
  }

  /// The FP8 weight's elements: `RNE_out(R_product(f32(w) × f32(s[i / BM, j / BN])))`, BF16 or F16.
  ///
  /// Into BF16 with the product in Float32 or BF16 (block FP8, and compressed-tensors with F32 or
  /// BF16 scales), each block's codes go through ``Float8Dequantization`` on SIMD lanes. Else
  /// (an F16 product or output) a table of the 256 codes' results under each scale of the current
  /// scale row is looked up, one multiply per code and block instead of one per element.
  private func dequantize(
    _ weight: QuantizedInput.ScaledWeight, elements: Range<Int>, into output: UnsafeMutableRawBufferPointer,
    scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    let columns = weight.columns
    let firstRow = elements.lowerBound / columns
    let lastRow = (elements.upperBound - 1) / columns
    // The scale rows of the weight rows the elements span.
    let gridColumns = weight.scale.shape.count == 2 ? weight.gridColumns : 1
    let scaleRows = firstRow / weight.block.rows..<lastRow / weight.block.rows + 1
    let width = weight.scaleFormat.byteWidth
    let scaleBytes = scratch.take(scaleRows.count * gridColumns * width)
    try weight.scaleFile.read(
      weight.scale, at: scaleRows.lowerBound * gridColumns * width, into: scaleBytes, scratch: &scratch)
    // The codes are read into the second half of the output, which the elements overwrite
    // front to back only after they are read (element i writes bytes 2i and 2i + 1, code i is
    // byte n + i): no buffer of their own, no page to fault in.
    let codes = UnsafeMutableRawBufferPointer(rebasing: output[elements.count..<2 * elements.count])
    try weight.weightFile.read(weight.weight, at: elements.lowerBound, into: codes, scratch: &scratch)
    let byTable = weight.dequantizesByTable
    let results = scratch.take(byTable ? 2 * 256 * gridColumns : 0).bindMemory(to: UInt16.self)
    var resultsRow = -1
    var position = elements.lowerBound
    while position < elements.upperBound {
      let row = position / columns
      let rowEnd = min(elements.upperBound, (row + 1) * columns)
      let scaleRow = (row / weight.block.rows - scaleRows.lowerBound) * gridColumns
      if byTable && scaleRow != resultsRow {
        Self.float8Values.withUnsafeBufferPointer { values in
          for block in 0..<gridColumns {
            let scale = weight.scaleFormat.value(
              at: scaleRow + block, in: UnsafeRawPointer(scaleBytes.baseAddress!))
            for code in 0..<256 {
              let value = weight.product.round(values[code] * scale)
              results[block * 256 + code] =
                (weight.output == .fp16
                ? Float16Conversion.bits(from: value) : BFloat16Conversion.bits(from: value)).littleEndian
            }
          }
        }
        resultsRow = scaleRow
      }
      var column = position - row * columns
      while position < rowEnd {
        let blockEnd = min(rowEnd, position + weight.block.columns - column % weight.block.columns)
        let block = column / weight.block.columns
        let indices = position - elements.lowerBound..<blockEnd - elements.lowerBound
        if !byTable {
          // The codes start n - indices.lowerBound ≥ indices.count bytes past their values.
          Float8Dequantization.bfloat16(
            codes.baseAddress! + indices.lowerBound, count: indices.count,
            scale: weight.scaleFormat.value(at: scaleRow + block, in: UnsafeRawPointer(scaleBytes.baseAddress!)),
            into: output.baseAddress! + 2 * indices.lowerBound)
        } else {
          let table = UnsafeMutableBufferPointer(rebasing: results[block * 256..<block * 256 + 256])
          for index in indices {
            output.storeBytes(of: table[Int(codes[index])], toByteOffset: 2 * index, as: UInt16.self)
          }
        }
        column += blockEnd - position
        position = blockEnd
      }
    }
  }

  /// The MXFP4 experts' elements of `[E, in, out]`: `RNE_bf16(e2m1(nibble) ×_f32 2^(scale − 127))`
  /// (torch's `ldexp` of the bfloat16 value by the int32 exponent), expert by expert, reading of
  /// every output row the groups that the covered input features fall in.
  private func dequantize(
    _ experts: QuantizedInput.MXFP4Experts, elements: Range<Int>, into output: UnsafeMutableRawBufferPointer,
    scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    let (inputs, outputs, groups) = (experts.inputs, experts.outputs, experts.groups)
    let firstRow = elements.lowerBound / outputs
    let lastRow = (elements.upperBound - 1) / outputs
    for expert in firstRow / inputs...lastRow / inputs {
      let rows =
        max(firstRow, expert * inputs) - expert * inputs..<min(lastRow + 1, (expert + 1) * inputs) - expert * inputs
      let covered = rows.lowerBound / 32..<(rows.upperBound - 1) / 32 + 1
      try scratch.scoped { (scratch) throws(SafeTensorsError) in
        let scales = scratch.take(outputs * groups)
        try experts.scalesFile.read(experts.scales, at: expert * outputs * groups, into: scales, scratch: &scratch)
        let rowBytes = covered.count * 16
        let blocks = scratch.take(outputs * rowBytes)
        if covered.count == groups {
          try experts.blocksFile.read(
            experts.blocks, at: expert * outputs * groups * 16, into: blocks, scratch: &scratch)
        } else {
          for row in 0..<outputs {
            try experts.blocksFile.read(
              experts.blocks, at: ((expert * outputs + row) * groups + covered.lowerBound) * 16,
              into: UnsafeMutableRawBufferPointer(rebasing: blocks[row * rowBytes..<(row + 1) * rowBytes]),
              scratch: &scratch)
          }
        }
        Self.float4Values.withUnsafeBufferPointer { values in
          Self.exponentValues.withUnsafeBufferPointer { powers in
            for input in rows {
              let group = input / 32
              let byte = (group - covered.lowerBound) * 16 + (input % 32) / 2
              let shift = UInt8(input % 2 * 4)
              let start = (expert * inputs + input) * outputs
              for column in max(start, elements.lowerBound) - start..<min(start + outputs, elements.upperBound) - start
              {
                let nibble = (blocks[column * rowBytes + byte] >> shift) & 0x0F
                let power = powers[Int(scales[column * groups + group])]
                output.storeBytes(
                  of: BFloat16Conversion.bits(from: values[Int(nibble)] * power).littleEndian,
                  toByteOffset: 2 * (start + column - elements.lowerBound), as: UInt16.self)
              }
            }
          }
        }
      }
    }
  }

  /// The value of every e2m1 nibble (transformers' `FP4_VALUES`).
  private static let float4Values: [Float] = [
    +0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
  ]

  /// `2^(s − 127)` in Float32 for every E8M0 byte `s`, as torch's `pow(2.0, s − 127)` gives it:
  /// `2^-127` is a subnormal, `2^128` infinity.
  private static let exponentValues = (0...255).map { Float(sign: .plus, exponent: $0 - 127, significand: 1) }

  /// The value of every e4m3fn byte.
  private static let float8Values = (0...255).map { Float8E4M3Conversion.float(from: UInt8($0)) }

  func readingNote(of name: String) -> String? {
    switch items[ExactName(name)] {
    case .fp8(let weight):
      "dequantized from F8_E4M3 \(weight.weight.shape) with \(weight.scale.name) "
        + "\(weight.scale.dtype.rawValue) \(weight.scale.shape), blocks of [\(weight.block.rows), \(weight.block.columns)]"
    case .mxfp4(let experts):
      "dequantized from MXFP4 \(experts.blocks.name) U8 \(experts.blocks.shape) with \(experts.scales.name) U8 "
        + "\(experts.scales.shape), as [E, in, out]"
    default: nil
    }
  }
}
