import Quantization
import TorchAO

/// A quantization scheme as a recipe names it (`quantize.scheme`), with the parameters it takes
/// and how they become a ``TorchAOConfig``; omitted parameters get torchao's defaults.
enum RecipeScheme: String, CaseIterable {
  case int8WeightOnly = "int8-weight-only"
  case int8Dynamic = "int8-dynamic"
  case float8WeightOnly = "float8-weight-only"
  case float8Dynamic = "float8-dynamic"
  case intxWeightOnly = "intx-weight-only"
  case int8DynamicIntx = "int8-dynamic-intx"
  case int4WeightOnly = "int4-weight-only"
  case mx = "mx"
  case nvfp4 = "nvfp4"
  case nvfp4Dynamic = "nvfp4-dynamic"

  /// The keys a `quantize` mapping with this scheme may have.
  var keys: [String] {
    let parameters: [String] =
      switch self {
      case .int8WeightOnly, .float8WeightOnly, .float8Dynamic: ["granularity"]
      case .int8Dynamic: ["granularity", "activation-mapping", "reduce-range"]
      case .intxWeightOnly, .int8DynamicIntx: ["bits", "granularity", "mapping", "scale-dtype"]
      case .int4WeightOnly: ["group-size"]
      case .mx: ["element", "scaling"]
      case .nvfp4, .nvfp4Dynamic: ["per-tensor-scale"]
      }
    return ["scheme"] + parameters
  }

  /// The config a `quantize` mapping describes.
  ///
  /// - Throws: `missingKey` without `scheme`; `invalidValue` for an unknown scheme or parameter
  ///   value; `unknownKey` for a parameter the scheme does not take; `wrongType`.
  static func config(_ node: RecipeNode) throws(RecipeError) -> TorchAOConfig {
    let names = allCases.map(\.rawValue).joined(separator: ", ")
    guard let schemeNode = try node.member("scheme", of: "quantize") else {
      throw node.error(.missingKey, "needs a scheme: one of \(names)")
    }
    let name = try schemeNode.string()
    guard let scheme = RecipeScheme(rawValue: name) else {
      throw schemeNode.error(.invalidValue, "unknown scheme '\(name)'; the schemes are \(names)")
    }
    let parameters = try node.mapping(allowed: scheme.keys, what: "scheme \(name)")
    return try scheme.config(parameters)
  }

  private func config(_ parameters: [String: RecipeNode]) throws(RecipeError) -> TorchAOConfig {
    let granularity = parameters["granularity"]
    switch self {
    case .int8WeightOnly:
      return .int8WeightOnly(try granularity?.granularity(groups: true) ?? .perRow)
    case .int8Dynamic:
      return .int8Dynamic(
        try granularity?.granularity(groups: false) ?? .perRow,
        activationMapping: try parameters["activation-mapping"]?.choice([
          "symmetric": IntxMapping.symmetric, "asymmetric": .asymmetric,
        ]) ?? .symmetric,
        reduceRange: try parameters["reduce-range"]?.boolean() ?? false)
    case .float8WeightOnly:
      return .float8WeightOnly(try granularity?.granularity(groups: true) ?? .perRow)
    case .float8Dynamic:
      return .float8Dynamic(try granularity?.granularity(groups: false) ?? .perTensor)
    case .intxWeightOnly, .int8DynamicIntx:
      let bits = try parameters["bits"]?.intxBits() ?? 8
      let blocks =
        try granularity?.granularity(groups: true, perTensor: false)
        ?? (self == .intxWeightOnly ? .perRow : .perGroup(32))
      let mapping =
        try parameters["mapping"]?.choice([
          "symmetric": IntxMapping.symmetric, "asymmetric": .asymmetric,
          "symmetric-no-clipping-error": .symmetricNoClippingError,
        ]) ?? .symmetric
      let scaleFormat = try parameters["scale-dtype"]?.choice([
        "bfloat16": FloatFormat.bf16, "float16": .fp16, "float32": .fp32,
      ])
      return self == .intxWeightOnly
        ? .intxWeightOnly(bits: bits, blocks, mapping: mapping, scaleFormat: scaleFormat)
        : .int8DynamicIntx(bits: bits, blocks, mapping: mapping, scaleFormat: scaleFormat)
    case .int4WeightOnly:
      return .int4WeightOnly(groupSize: try parameters["group-size"]?.int4GroupSize() ?? 128)
    case .mx:
      return .mx(
        try parameters["element"]?.choice(["fp8": MXElement.float8E4M3, "fp4": .float4E2M1]) ?? .float8E4M3,
        try parameters["scaling"]?.choice(["rceil": MXScaling.rceil, "floor": .floor]) ?? .rceil)
    case .nvfp4:
      return .nvfp4WeightOnly(perTensorScale: try parameters["per-tensor-scale"]?.boolean() ?? true)
    case .nvfp4Dynamic:
      return .nvfp4Dynamic(perTensorScale: try parameters["per-tensor-scale"]?.boolean() ?? true)
    }
  }
}

extension RecipeNode {
  /// `per-row`, `per-tensor` or `per-group:N` (N ≥ 1), where the scheme offers them.
  fileprivate func granularity(groups: Bool, perTensor: Bool = true) throws(RecipeError) -> Granularity {
    let allowed = ["per-row"] + (perTensor ? ["per-tensor"] : []) + (groups ? ["per-group:N"] : [])
    let list = allowed.joined(separator: ", ")
    let text: String
    do {
      text = try string()
    } catch {
      throw self.error(.wrongType, "\(error.message); the granularity is one of \(list)")
    }
    switch text {
    case "per-row": return .perRow
    case "per-tensor" where perTensor: return .perTensor
    case let group where groups && group.hasPrefix("per-group:"):
      guard let size = Int(group.dropFirst("per-group:".count)), size >= 1 else {
        throw error(.invalidValue, "the group size in '\(text)' must be a positive integer, e.g. per-group:32")
      }
      return .perGroup(size)
    default:
      throw error(.invalidValue, "'\(text)' is not a granularity this scheme offers; use \(list)")
    }
  }

  /// An intx width, 1 to 8.
  fileprivate func intxBits() throws(RecipeError) -> Int {
    let bits = try integer()
    guard (1...8).contains(bits) else {
      throw error(.invalidValue, "\(bits) bits is not offered; torchao's intx widths are 1 to 8")
    }
    return bits
  }

  /// An int4 group size torchao offers.
  fileprivate func int4GroupSize() throws(RecipeError) -> Int {
    let size = try integer()
    guard Int4Scheme.groupSizes.contains(size) else {
      let sizes = Int4Scheme.groupSizes.sorted().map(String.init).joined(separator: ", ")
      throw error(.invalidValue, "group size \(size) is not offered; Int4WeightOnlyConfig takes \(sizes)")
    }
    return size
  }
}
