import Quantization
import SafeTensors

extension TorchAOConfig {
  /// The `quantization_config` object transformers writes into `config.json` for this config
  /// (`TorchAoConfig(cfg).to_dict()`, SPEC §9.2), keys sorted as `config.json` has them.
  public var transformersQuantizationConfig: JSONValue {
    Self.transformersQuantizationConfig(quantType: configDict)
  }

  /// The `quantization_config` transformers writes into `config.json` for a `TorchAoConfig`
  /// whose `quant_type` has the config dict `quantType` (``configDict``, or
  /// ``fqnToConfigDict(_:)``).
  public static func transformersQuantizationConfig(quantType: JSONValue) -> JSONValue {
    .object([
      JSONMember("include_input_output_embeddings", .bool(false)), JSONMember("modules_to_not_convert", .null),
      JSONMember("quant_method", .string("torchao")),
      JSONMember("quant_type", .object([JSONMember("default", quantType)])),
      JSONMember("untie_embedding_weights", .bool(false)),
    ])
  }

  /// torchao's `config_to_dict(FqnToConfig(configs))`: the map under both `fqn_to_config` and
  /// its alias `module_fqn_to_config`, keys sorted, a `nil` config (skip) as `null` (moe.md §3.3).
  public static func fqnToConfigDict(_ configs: [(key: String, config: TorchAOConfig?)]) -> JSONValue {
    let map = JSONValue.object(configs.map { JSONMember($0.key, $0.config?.configDict ?? .null) }).sortingKeys()
    return .object([
      JSONMember("_data", .object([JSONMember("fqn_to_config", map), JSONMember("module_fqn_to_config", map)])),
      JSONMember("_type", .string("FqnToConfig")), JSONMember("_version", .number("1")),
    ])
  }

  /// torchao's `config_to_dict(cfg)`: `{"_data": {...}, "_type": NAME, "_version": N}`, keys sorted.
  public var configDict: JSONValue {
    let (name, version, fields) = configFields
    return .object([
      JSONMember("_data", .object(fields.sorted { $0.key < $1.key })), JSONMember("_type", .string(name)),
      JSONMember("_version", .number(String(version))),
    ])
  }

  private var configFields: (String, Int, [JSONMember]) {
    let inductor = JSONMember("set_inductor_config", .bool(true))
    let e4m3 = Self.torchDType("float8_e4m3fn")
    let intxCommon = [
      JSONMember("intx_choose_qparams_algorithm", Self.enumValue("IntxChooseQParamsAlgorithm", "AFFINE")),
      JSONMember("intx_packing_format", Self.enumValue("IntxPackingFormat", "UNPACKED_TO_INT8")),
    ]
    switch self {
    case .int8WeightOnly(let granularity):
      return (
        "Int8WeightOnlyConfig", 2,
        [JSONMember("granularity", Self.versioned(granularity)), JSONMember("group_size", .null), inductor]
      )
    case .int8Dynamic(let granularity, let mapping, let reduceRange):
      return (
        "Int8DynamicActivationInt8WeightConfig", 2,
        [
          JSONMember("act_mapping_type", Self.enumValue("MappingType", mapping.rawValue)),
          JSONMember("granularity", Self.versioned(granularity)), JSONMember("reduce_range", .bool(reduceRange)),
          inductor,
          JSONMember("weight_only_decode", .bool(false)),
        ]
      )
    case .float8WeightOnly(let granularity):
      return (
        "Float8WeightOnlyConfig", 2,
        [JSONMember("granularity", Self.versioned(granularity)), inductor, JSONMember("weight_dtype", e4m3)]
      )
    case .float8Dynamic(let granularity):
      let mmConfig = JSONValue.object([
        JSONMember(
          "_data",
          .object([
            JSONMember("emulate", .bool(false)), JSONMember("pad_inner_dim", .bool(false)),
            JSONMember("use_fast_accum", .bool(true)),
          ])), JSONMember("_type", .string("Float8MMConfig")), JSONMember("_version", .number("1")),
      ])
      return (
        "Float8DynamicActivationFloat8WeightConfig", 2,
        [
          JSONMember("activation_dtype", e4m3), JSONMember("activation_value_lb", .null),
          JSONMember("activation_value_ub", .null), JSONMember("alg_id", .number("0")),
          JSONMember(
            "granularity", .array([Self.versioned(granularity.activation), Self.versioned(granularity)])),
          JSONMember("kernel_preference", Self.enumValue("KernelPreference", "AUTO")),
          JSONMember("mm_config", mmConfig),
          JSONMember("packing_format", Self.enumValue("Float8PackingFormat", "PLAIN")), inductor,
          JSONMember("weight_dtype", e4m3),
        ]
      )
    case .intxWeightOnly(let bits, let granularity, let mapping, let scaleFormat):
      return (
        "IntxWeightOnlyConfig", 2,
        intxCommon + [
          JSONMember("granularity", Self.versioned(granularity, axis: true)),
          JSONMember("mapping_type", Self.enumValue("MappingType", mapping.rawValue)),
          JSONMember("scale_dtype", scaleFormat.map { Self.torchDType($0.torchName) } ?? .null),
          JSONMember("weight_dtype", Self.torchDType("int\(bits)")),
        ]
      )
    case .int8DynamicIntx(let bits, let granularity, let mapping, let scaleFormat):
      return (
        "Int8DynamicActivationIntxWeightConfig", 2,
        intxCommon + [
          JSONMember("act_mapping_type", Self.enumValue("MappingType", "ASYMMETRIC")),
          JSONMember("weight_dtype", Self.torchDType("int\(bits)")),
          JSONMember("weight_granularity", Self.versioned(granularity, axis: true)),
          JSONMember("weight_mapping_type", Self.enumValue("MappingType", mapping.rawValue)),
          JSONMember("weight_scale_dtype", scaleFormat.map { Self.torchDType($0.torchName) } ?? .null),
        ]
      )
    case .int4WeightOnly(let groupSize):
      return (
        "Int4WeightOnlyConfig", 2,
        [
          JSONMember("group_size", .number(String(groupSize))),
          JSONMember("int4_choose_qparams_algorithm", Self.enumValue("Int4ChooseQParamsAlgorithm", "TINYGEMM")),
          JSONMember("int4_packing_format", Self.enumValue("Int4PackingFormat", "PLAIN")),
          JSONMember("int4_tile_packed_ntile", .number("8")), inductor,
        ]
      )
    case .mx(let element, let scaling):
      return (
        "MXDynamicActivationMXWeightConfig", 1,
        [
          JSONMember("activation_dtype", Self.torchDType(element.rawValue)), JSONMember("block_size", .number("32")),
          JSONMember("kernel_preference", Self.enumValue("KernelPreference", "AUTO")),
          JSONMember("scaling_mode", Self.enumValue("ScaleCalculationMode", scaling.rawValue)),
          JSONMember("weight_dtype", Self.torchDType(element.rawValue)),
        ]
      )
    case .nvfp4WeightOnly(let perTensorScale):
      return ("NVFP4WeightOnlyConfig", 1, [JSONMember("use_dynamic_per_tensor_scale", .bool(perTensorScale))])
    case .nvfp4Dynamic(let perTensorScale):
      return (
        "NVFP4DynamicActivationNVFP4WeightConfig", 1,
        [
          JSONMember("step", .null), JSONMember("use_dynamic_per_tensor_scale", .bool(perTensorScale)),
          JSONMember("use_triton_kernel", .bool(true)),
        ]
      )
    }
  }

  /// A granularity as `config_to_dict` writes it: a versioned dataclass. Intx writes per-row as
  /// `PerAxis(axis=0)`; per-column is `PerRow(dim=1)`.
  static func versioned(_ granularity: Granularity, axis: Bool = false) -> JSONValue {
    let (name, fields): (String, [JSONMember]) =
      switch granularity {
      case .perRow where axis: ("PerAxis", [JSONMember("axis", .number("0"))])
      case .perRow: ("PerRow", [JSONMember("dim", .number("-1"))])
      case .perColumn: ("PerRow", [JSONMember("dim", .number("1"))])
      case .perTensor: ("PerTensor", [])
      case .perGroup(let size): ("PerGroup", [JSONMember("group_size", .number(String(size)))])
      }
    return .object([
      JSONMember("_data", .object(fields)), JSONMember("_type", .string(name)), JSONMember("_version", .number("1")),
    ])
  }
}
