import Foundation
import SafeTensors
import TorchAO

/// What an input must be for a recipe that quantizes or dequantizes: unquantized weights, or
/// weights that safeshard dequantizes (``QuantizedInput``: block-scaled and compressed-tensors
/// FP8, gpt-oss MXFP4, read as bfloat16; ``TorchAOInput``: torchao checkpoints, read in each
/// weight's dtype), and for a model directory that is quantized a `config.json` to carry the
/// quantization config.
///
/// An input quantized by any other method is refused, naming the method and what shows it: a
/// torchao checkpoint opened as stored rather than through
/// ``Checkpoint/input(at:dequantizing:)`` (quantizing its parts would break it, and only
/// `reshard` copies them), a `config.json` with a `quantization_config`
/// (or MLX's `quantization`), or tensors that are quantized codes with their scales (FP8 weights,
/// `weight_scale_inv`, GPTQ/AWQ `qweight`, compressed-tensors `weight_packed`, bitsandbytes `SCB`
/// or `quant_state`, MLX `scales` and `biases`, a `weight_scale` beside an 8-bit weight).
enum QuantizingInputCheck {
  /// Throws when `checkpoint` cannot be quantized (`quantizing`) or dequantized as it is.
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming the file, and the tensor where one
  ///   shows it.
  static func check(_ checkpoint: Checkpoint, quantizing: Bool) throws(PipelineError) {
    if TorchAOCheckpoint.hasTorchAOMetadata(checkpoint) {
      throw PipelineError(
        .invalidInput,
        "\(checkpoint.path) is already a torchao checkpoint, opened as it is stored"
          + (quantizing ? "; quantizing its parts again would break it" : "")
          + ". Open it with Checkpoint.input(at:dequantizing: true) to read its weights dequantized, or use --recipe "
          + "reshard to re-shard it as it is.",
        path: checkpoint.path)
    }
    var isDirectory: ObjCBool = false
    let directory =
      FileManager.default.fileExists(atPath: checkpoint.path, isDirectory: &isDirectory) && isDirectory.boolValue
    if directory && quantizing {
      let configPath = (checkpoint.path as NSString).appendingPathComponent("config.json")
      guard let bytes = FileManager.default.contents(atPath: configPath) else {
        throw PipelineError(
          .invalidInput,
          "\(checkpoint.path) has no config.json; transformers needs it to load the quantized model (the "
            + "quantization_config goes into it). Add the model's config.json, or give the .safetensors file "
            + "itself to convert the weights alone.",
          path: configPath)
      }
      if !checkpoint.isDequantized, let method = quantizationMethod(config: Array(bytes)) {
        throw alreadyQuantized(method, path: configPath, tensor: nil, evidence: "its config.json says so")
      }
    } else if directory && !checkpoint.isDequantized,
      let bytes = FileManager.default.contents(
        atPath: (checkpoint.path as NSString).appendingPathComponent("config.json")),
      let method = quantizationMethod(config: Array(bytes))
    {
      throw alreadyQuantized(
        method, path: (checkpoint.path as NSString).appendingPathComponent("config.json"), tensor: nil,
        evidence: "its config.json says so")
    }
    for file in checkpoint.files {
      for tensor in file.header.tensors {
        if let (method, evidence) = quantizedEvidence(tensor, in: file.header) {
          // A lone file of FP8 weights: what a model directory's config.json would say is missing.
          let lone = !directory && [DType.f8e4m3, .f8e5m2].contains(fp8Weight(of: tensor, in: file.header)?.dtype)
          throw alreadyQuantized(
            method, path: file.path, tensor: tensor.name, evidence: evidence,
            hint: lone
              ? " A single .safetensors file does not say how its FP8 weights were scaled: safeshard takes the "
                + "format and the block size from the model's config.json (quantization_config), never from the "
                + "shapes (transformers' guess from the scale grid is wrong for shapes that are not multiples of "
                + "the block). Give the model directory that holds this file and its config.json." : "")
        }
      }
    }
  }

  /// The float8 weight `tensor` is, or the weight its scale `tensor` scales, or `nil`.
  private static func fp8Weight(of tensor: TensorInfo, in header: SafeTensorsHeader) -> TensorInfo? {
    if [.f8e4m3, .f8e5m2].contains(tensor.dtype) { return tensor }
    for suffix in [".weight_scale_inv", ".weight_scale"] where tensor.name.hasSuffix(suffix) {
      return header.tensor(named: String(tensor.name.dropLast(suffix.count)) + ".weight")
    }
    return nil
  }

  /// The method named by `config.json`'s `quantization_config.quant_method` (`"unknown"` when it
  /// has none), `"mlx"` for MLX's `quantization`, or `nil` when the config declares none.
  static func quantizationMethod(config bytes: [UInt8]) -> String? {
    guard let config = try? JSONParser.parse(bytes) else { return nil }
    if let quantization = config["quantization_config"], quantization != .null {
      return quantization["quant_method"]?.string ?? "unknown"
    }
    if let quantization = config["quantization"], quantization != .null { return "mlx" }
    return nil
  }

  /// The method `tensor` shows and how, or `nil` when it looks like an ordinary tensor.
  static func quantizedEvidence(_ tensor: TensorInfo, in header: SafeTensorsHeader) -> (String, String)? {
    let name = tensor.name
    func sibling(_ last: String) -> TensorInfo? {
      let module = name.split(separator: ".").dropLast().joined(separator: ".")
      return header.tensor(named: module.isEmpty ? last : module + "." + last)
    }
    // The last non-empty dot-separated component (the name itself when it has none), found
    // without splitting the name: a 100 000-tensor input asks once a tensor.
    var stem = name.utf8[...]
    while stem.last == UInt8(ascii: ".") { stem = stem.dropLast() }
    let component = stem[(stem.lastIndex(of: UInt8(ascii: ".")).map(stem.index(after:)) ?? stem.startIndex)...]
    let last = component.isEmpty ? name : String(Substring(component))
    switch last {
    case "weight_scale_inv": return ("fp8", "it holds block scales (weight_scale_inv)")
    case "qweight", "qzeros": return ("gptq or awq", "it holds packed integer codes (\(last))")
    case "weight_packed": return ("compressed-tensors", "it holds packed integer codes (weight_packed)")
    case "SCB": return ("bitsandbytes", "it holds int8 row scales (SCB)")
    case "scales" where sibling("biases") != nil: return ("mlx", "it holds group scales and biases")
    case "weight_scale":
      if let weight = sibling("weight"), [.f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .i8, .u8].contains(weight.dtype) {
        return ("a scaled 8-bit or packed 4-bit format", "its \(weight.dtype.rawValue) weight has a weight_scale")
      }
    default:
      if containsBitsAndBytesQuantState(name) { return ("bitsandbytes", "it holds a 4-bit quant_state") }
    }
    if [.f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz].contains(tensor.dtype), tensor.shape.count >= 2 {
      return ("fp8", "it is stored as \(tensor.dtype.rawValue)")
    }
    return nil
  }

  /// Whether `name` contains `quant_state.bitsandbytes__`: by bytes for an ASCII name, else by
  /// Foundation (composed characters), as before.
  private static func containsBitsAndBytesQuantState(_ name: String) -> Bool {
    let marker = Array("quant_state.bitsandbytes__".utf8)
    let utf8 = Array(name.utf8)
    guard utf8.allSatisfy({ $0 < 0x80 }) else { return name.contains("quant_state.bitsandbytes__") }
    guard utf8.count >= marker.count else { return false }
    return (0...(utf8.count - marker.count)).contains { start in
      utf8[start..<(start + marker.count)].elementsEqual(marker)
    }
  }

  private static func alreadyQuantized(
    _ method: String, path: String, tensor: String?, evidence: String, hint: String = ""
  ) -> PipelineError {
    PipelineError(
      .invalidInput,
      "\(path): \(tensor.map { "tensor '\($0)': " } ?? "")the input is already quantized with \(method) "
        + "(\(evidence)); safeshard dequantizes block-scaled FP8 (quant_method fp8 with weight_block_size), "
        + "compressed-tensors FP8 (float-quantized) and gpt-oss MXFP4 model directories and torchao checkpoints only. "
        + "Start from the unquantized (bf16) checkpoint, or use --recipe reshard to re-shard it as it is." + hint,
      path: path, tensor: tensor)
  }
}
