import Foundation
import Quantization
import SafeTensors
import Testing

/// One golden fixture of `Tests/Fixtures/torchao`: its input weights, torchao's flattened output,
/// and the config that maps to a ``QuantizationScheme``.
struct TorchAOFixture {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/torchao")

  /// Every fixture directory name, sorted.
  static var names: [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
      .filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent("\($0)/config.json").path) }
      .sorted()
  }

  let name: String
  let format: FloatFormat
  let input: SafeTensorsFile
  let expected: SafeTensorsFile
  /// What torchao made of each tensor: a subclass name, or "Tensor" when it stayed plain.
  let outcome: [String: String]
  private let configType: String
  private let configData: [String: Any]
  private let candidates: Set<String>

  init(_ name: String) throws {
    self.name = name
    let folder = Self.directory.appendingPathComponent(name)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json")))
    let config = try #require(json as? [String: Any])
    format = try #require(
      ["bfloat16": .bf16, "float16": .fp16, "float32": .fp32][config["input_dtype"] as? String ?? ""])
    let torchao = try #require(config["torchao_config"] as? [String: Any])
    configType = try #require(torchao["_type"] as? String)
    configData = try #require(torchao["_data"] as? [String: Any])
    outcome = try #require(config["outcome"] as? [String: String])
    candidates = Set(
      (config["linear_weights"] as? [String] ?? [])
        + (config["param_fqns_quantized_via_FqnToConfig"] as? [String] ?? []))
    input = try SafeTensorsFile(path: folder.appendingPathComponent("input.safetensors").path)
    expected = try SafeTensorsFile(path: folder.appendingPathComponent("expected.safetensors").path)
  }

  /// The names of the tensors torchao quantized.
  var quantizedTensors: [String] { outcome.filter { $0.value != "Tensor" }.keys.sorted() }

  /// The input shape and bytes of `tensor`.
  func input(_ tensor: String) throws -> (shape: [Int], bytes: [UInt8]) {
    let info = try input.tensor(named: tensor)
    return (info.shape, try input.bytes(of: info))
  }

  /// The flattened name torchao gives part `part` of `tensor`: `<module>._<param>_<part>`.
  static func flattenedName(_ tensor: String, _ part: PartName) -> String {
    let dot = tensor.lastIndex(of: ".")!
    return "\(tensor[..<dot])._\(tensor[tensor.index(after: dot)...])_\(part.rawValue)"
  }

  /// torchao's stored parts of `tensor`, with their header entries.
  func expectedParts(_ tensor: String) throws -> [PartName: (info: TensorInfo, bytes: [UInt8])] {
    var parts: [PartName: (TensorInfo, [UInt8])] = [:]
    for part in PartName.allCases {
      guard let info = expected.header.tensor(named: Self.flattenedName(tensor, part)) else { continue }
      parts[part] = (info, try expected.bytes(of: info))
    }
    return parts
  }

  /// The scheme the fixture's config applies to `tensor`, or `nil` when torchao's selection leaves
  /// it plain: not a candidate, or a silent skip (Float8 dynamic with N or K not a multiple of
  /// 16; Int4 with K not a multiple of the group size).
  func scheme(for tensor: String, shape: [Int]) throws -> (any QuantizationScheme)? {
    guard candidates.contains(tensor) else { return nil }
    let data = configData
    switch configType {
    case "Int8WeightOnlyConfig":
      return Int8Scheme(source: format, granularity: try Self.granularity(data["granularity"]))
    case "Int8DynamicActivationInt8WeightConfig":
      return Int8Scheme(
        source: format, granularity: try Self.granularity(data["granularity"]),
        reduceRange: data["reduce_range"] as? Bool ?? false)
    case "Float8WeightOnlyConfig":
      return Float8Scheme(source: format, granularity: try Self.granularity(data["granularity"]))
    case "Float8DynamicActivationFloat8WeightConfig":
      guard shape[shape.count - 1] % 16 == 0, shape[shape.count - 2] % 16 == 0 else { return nil }
      return Float8Scheme(source: format, granularity: try Self.granularity(data["granularity"]))
    case "IntxWeightOnlyConfig", "Int8DynamicActivationIntxWeightConfig":
      let prefix = configType == "IntxWeightOnlyConfig" ? "" : "weight_"
      let width = try #require(Self.enumValue(data["weight_dtype"])?.dropFirst(3)).flatMap { Int($0) }
      return IntxScheme(
        source: format, bits: try #require(width),
        mapping: try #require(IntxMapping(rawValue: Self.enumValue(data[prefix + "mapping_type"]) ?? "")),
        granularity: try Self.granularity(data[prefix + "granularity"]),
        scaleFormat: try Self.enumValue(data[prefix + "scale_dtype"]).map { try #require(Self.formats[$0]) })
    case "Int4WeightOnlyConfig":
      let scheme = Int4Scheme(source: format, groupSize: try #require(data["group_size"] as? Int))
      let layout = Result { () throws(QuantizationError) in try scheme.outputLayout(shape: shape) }
      if case .failure(let error) = layout, error.code == .unsupportedShape { return nil }
      return scheme
    case "MXDynamicActivationMXWeightConfig":
      return MXScheme(
        source: format, element: try #require(MXElement(rawValue: Self.enumValue(data["weight_dtype"]) ?? "")),
        scaling: try #require(MXScaling(rawValue: Self.enumValue(data["scaling_mode"]) ?? "")))
    case "NVFP4WeightOnlyConfig", "NVFP4DynamicActivationNVFP4WeightConfig":
      return NVFP4Scheme(
        source: format, usesPerTensorScale: try #require(data["use_dynamic_per_tensor_scale"] as? Bool))
    default:
      throw FixtureError(message: "no scheme for \(configType)")
    }
  }

  private static let formats: [String: FloatFormat] = ["bfloat16": .bf16, "float16": .fp16, "float32": .fp32]

  /// The `_data` of a `{"_type", "_data"}` enum or dtype value, `nil` for JSON null.
  private static func enumValue(_ value: Any?) -> String? {
    (value as? [String: Any])?["_data"] as? String
  }

  /// A weight granularity: the last of an `[act, weight]` list, or the single value.
  private static func granularity(_ value: Any?) throws -> Granularity {
    let object = try #require(((value as? [Any])?.last ?? value) as? [String: Any])
    switch object["_type"] as? String {
    case "PerRow", "PerAxis": return .perRow
    case "PerTensor": return .perTensor
    case "PerGroup": return .perGroup(try #require((object["_data"] as? [String: Any])?["group_size"] as? Int))
    default: throw FixtureError(message: "unknown granularity \(object)")
    }
  }
}

/// A fixture that the tests cannot interpret.
struct FixtureError: Error, CustomStringConvertible {
  let message: String
  var description: String { message }
}
