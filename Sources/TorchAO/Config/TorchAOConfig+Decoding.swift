import Quantization
import SafeTensors

extension TorchAOConfig {
  /// Reads a config from torchao's `config_to_dict` form (what `quant_type.default` holds in a
  /// transformers `quantization_config`).
  ///
  /// The result must write back exactly the same dictionary (``configDict``), so a field
  /// safeshard does not model, or models with another value, is refused rather than dropped.
  ///
  /// - Throws: `unsupported`, naming the config and what is not supported.
  public init(configDict value: JSONValue) throws(TorchAOError) {
    guard let type = value["_type"]?.string, let data = value["_data"], data.members != nil else {
      throw TorchAOError(.unsupported, "not a torchao config dictionary: \(JSONWriter.string(value))")
    }
    func bits(_ key: String) throws(TorchAOError) -> Int {
      guard let name = data[key]?["_data"]?.string, name.hasPrefix("int"), let bits = Int(name.dropFirst(3)),
        (1...8).contains(bits)
      else { throw TorchAOError(.unsupported, "\(type): \(key) must be torch.int1 … torch.int8") }
      return bits
    }
    func mapping(_ key: String) throws(TorchAOError) -> IntxMapping {
      guard let name = data[key]?["_data"]?.string, let mapping = IntxMapping(rawValue: name) else {
        throw TorchAOError(.unsupported, "\(type): unsupported \(key)")
      }
      return mapping
    }
    func scaleFormat(_ key: String) throws(TorchAOError) -> FloatFormat? {
      guard let value = data[key], value != .null else { return nil }
      guard let name = value["_data"]?.string, let format = FloatFormat(torchName: name) else {
        throw TorchAOError(.unsupported, "\(type): unsupported \(key)")
      }
      return format
    }
    func flag(_ key: String) -> Bool { data[key] == .bool(true) }

    switch type {
    case "Int8WeightOnlyConfig":
      self = .int8WeightOnly(try Self.granularity(data["granularity"], in: type))
    case "Int8DynamicActivationInt8WeightConfig":
      self = .int8Dynamic(
        try Self.granularity(data["granularity"], in: type), activationMapping: try mapping("act_mapping_type"),
        reduceRange: flag("reduce_range"))
    case "Float8WeightOnlyConfig":
      self = .float8WeightOnly(try Self.granularity(data["granularity"], in: type))
    case "Float8DynamicActivationFloat8WeightConfig":
      self = .float8Dynamic(try Self.granularity(data["granularity"], in: type))
    case "IntxWeightOnlyConfig":
      self = .intxWeightOnly(
        bits: try bits("weight_dtype"), try Self.granularity(data["granularity"], in: type),
        mapping: try mapping("mapping_type"), scaleFormat: try scaleFormat("scale_dtype"))
    case "Int8DynamicActivationIntxWeightConfig":
      self = .int8DynamicIntx(
        bits: try bits("weight_dtype"), try Self.granularity(data["weight_granularity"], in: type),
        mapping: try mapping("weight_mapping_type"), scaleFormat: try scaleFormat("weight_scale_dtype"))
    case "Int4WeightOnlyConfig":
      guard let groupSize = data["group_size"]?.uint64.flatMap({ Int(exactly: $0) }) else {
        throw TorchAOError(.unsupported, "\(type): group_size must be an integer")
      }
      self = .int4WeightOnly(groupSize: groupSize)
    case "MXDynamicActivationMXWeightConfig":
      guard let name = data["weight_dtype"]?["_data"]?.string, let element = MXElement(rawValue: name),
        let modeName = data["scaling_mode"]?["_data"]?.string, let scaling = MXScaling(rawValue: modeName)
      else { throw TorchAOError(.unsupported, "\(type): unsupported weight_dtype or scaling_mode") }
      self = .mx(element, scaling)
    case "NVFP4WeightOnlyConfig":
      self = .nvfp4WeightOnly(perTensorScale: flag("use_dynamic_per_tensor_scale"))
    case "NVFP4DynamicActivationNVFP4WeightConfig":
      self = .nvfp4Dynamic(perTensorScale: flag("use_dynamic_per_tensor_scale"))
    default:
      throw TorchAOError(.unsupported, "safeshard does not implement \(type)")
    }
    guard configDict == value else {
      throw TorchAOError(
        .unsupported,
        "\(type): only the fields safeshard models may differ from torchao's defaults; "
          + "safeshard would write \(JSONWriter.string(configDict)), not \(JSONWriter.string(value))")
    }
  }

  /// Reads a granularity; a `[activation, weight]` pair gives the weight's.
  private static func granularity(_ value: JSONValue?, in type: String) throws(TorchAOError) -> Granularity {
    let single = value?.array?.last ?? value
    switch single?["_type"]?.string {
    case "PerRow" where single?["_data"]?["dim"]?.uint64 == 1: return .perColumn
    case "PerRow": return .perRow
    case "PerAxis" where single?["_data"]?["axis"]?.uint64 == 0: return .perRow
    case "PerTensor": return .perTensor
    case "PerGroup":
      if let size = single?["_data"]?["group_size"]?.uint64.flatMap({ Int(exactly: $0) }), size > 0 {
        return .perGroup(size)
      }
    default: break
    }
    throw TorchAOError(
      .unsupported, "\(type): unsupported granularity \(value.map { JSONWriter.string($0) } ?? "none")")
  }
}
