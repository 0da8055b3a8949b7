import Quantization
import SafeTensors

extension TorchAOConfig {
  /// The metadata entry torchao writes for a weight of `shape` in `source` format quantized with
  /// this config: the subclass, its attributes in torchao's order, and its data part names.
  public func description(shape: [Int], source: FloatFormat) -> TensorDescription {
    let dtype = Self.torchDType(source.torchName)
    switch self {
    case .int8WeightOnly(let granularity):
      return int8Description(granularity, shape: shape, dtype: dtype, activation: .null, reduceRange: false)
    case .int8Dynamic(let granularity, let mapping, let reduceRange):
      let activation = Self.typed(
        "QuantizeTensorToInt8Kwargs",
        [
          ("granularity", Self.granularity(granularity == .perTensor ? .perTensor : .perRow)),
          ("mapping_type", Self.enumValue("MappingType", mapping.rawValue)), ("reduce_range", .bool(reduceRange)),
        ])
      return int8Description(granularity, shape: shape, dtype: dtype, activation: activation, reduceRange: reduceRange)
    case .float8WeightOnly(let granularity):
      return float8Description(granularity, shape: shape, dtype: dtype, dynamic: false)
    case .float8Dynamic(let granularity):
      return float8Description(granularity, shape: shape, dtype: dtype, dynamic: true)
    case .intxWeightOnly(let bits, let granularity, _, _), .int8DynamicIntx(let bits, let granularity, _, _):
      let activation: JSONValue = if case .int8DynamicIntx = self { .string("int8_asym_per_token") } else { .null }
      return TensorDescription(
        subclass: "IntxUnpackedToInt8Tensor",
        attributes: [
          JSONMember("target_dtype", Self.torchDType("int\(bits)")),
          JSONMember("block_size", Self.blockSize(granularity, shape: shape)), JSONMember("dtype", dtype),
          JSONMember("activation_quantization", activation),
        ],
        tensorDataNames: ["qdata", "scale", "zero_point"])
    case .int4WeightOnly(let groupSize):
      // torchao writes Int4Tensor's activation_dtype as bfloat16 whatever the weight's dtype.
      return TensorDescription(
        subclass: "Int4Tensor",
        attributes: [
          JSONMember("activation_dtype", Self.torchDType("bfloat16")),
          JSONMember("block_size", Self.blockSize(.perGroup(groupSize), shape: shape)),
          JSONMember("shape", Self.integers(shape)),
        ],
        tensorDataNames: ["qdata", "scale", "zero_point"])
    case .mx(let element, let scaling):
      let elementType = Self.torchDType(element.rawValue)
      let activation = Self.typed(
        "QuantizeTensorToMXKwargs",
        [
          ("elem_dtype", elementType), ("block_size", .number("32")),
          ("scaling_mode", Self.enumValue("ScaleCalculationMode", scaling.rawValue)),
          ("kernel_preference", Self.enumValue("KernelPreference", "AUTO")), ("is_swizzled_scales", .bool(true)),
        ])
      return TensorDescription(
        subclass: "MXTensor",
        attributes: [
          JSONMember("elem_dtype", elementType), JSONMember("block_size", .number("32")),
          JSONMember("orig_dtype", dtype),
          JSONMember("kernel_preference", Self.enumValue("KernelPreference", "AUTO")),
          JSONMember("act_quant_kwargs", activation), JSONMember("is_swizzled_scales", .bool(true)),
        ],
        tensorDataNames: ["qdata", "scale"])
    case .nvfp4WeightOnly(let perTensorScale), .nvfp4Dynamic(let perTensorScale):
      let dynamic = if case .nvfp4Dynamic = self { true } else { false }
      let activation =
        dynamic
        ? Self.typed(
          "QuantizeTensorToNVFP4Kwargs",
          [
            ("block_size", .number("16")), ("is_swizzled_scales", .bool(true)), ("use_triton_kernel", .bool(true)),
            ("use_dynamic_per_tensor_scale", .bool(perTensorScale)),
          ]) : .null
      return TensorDescription(
        subclass: "NVFP4Tensor",
        attributes: [
          JSONMember("is_swizzled_scales", .bool(true)), JSONMember("use_triton_kernel", .bool(dynamic)),
          JSONMember("act_quant_kwargs", activation), JSONMember("block_size", .number("16")),
          JSONMember("orig_dtype", dtype),
        ],
        tensorDataNames: perTensorScale ? ["per_tensor_scale", "qdata", "scale"] : ["qdata", "scale"])
    }
  }

  private func int8Description(
    _ granularity: Granularity, shape: [Int], dtype: JSONValue, activation: JSONValue, reduceRange: Bool
  ) -> TensorDescription {
    TensorDescription(
      subclass: "Int8Tensor",
      attributes: [
        JSONMember("act_quant_kwargs", activation), JSONMember("reduce_range", .bool(reduceRange)),
        JSONMember("block_size", Self.blockSize(granularity, shape: shape)), JSONMember("dtype", dtype),
      ],
      tensorDataNames: ["zero_point", "qdata", "scale"])
  }

  private func float8Description(_ granularity: Granularity, shape: [Int], dtype: JSONValue, dynamic: Bool)
    -> TensorDescription
  {
    let automatic = Self.enumValue("KernelPreference", "AUTO")
    let mmConfig = Self.typed(
      "Float8MMConfig", [("emulate", .bool(false)), ("use_fast_accum", .bool(true)), ("pad_inner_dim", .bool(false))])
    let activation = Self.typed(
      "QuantizeTensorToFloat8Kwargs",
      [
        ("float8_dtype", Self.torchDType("float8_e4m3fn")), ("granularity", Self.granularity(granularity.activation)),
        ("mm_config", .null), ("hp_value_lb", .null), ("hp_value_ub", .null), ("kernel_preference", automatic),
      ])
    return TensorDescription(
      subclass: "Float8Tensor",
      attributes: [
        JSONMember("block_size", Self.blockSize(granularity, shape: shape)),
        JSONMember("mm_config", dynamic ? mmConfig : .null),
        JSONMember("act_quant_kwargs", dynamic ? activation : .null),
        JSONMember("kernel_preference", automatic), JSONMember("dtype", dtype),
      ],
      tensorDataNames: ["qdata", "scale"])
  }

  /// torchao's `block_size` for a granularity: the block of elements that share one scale
  /// (`get_block_size`; `PerRow(1)` spans dimension 1: `[1, K, 1]` for `[E, K, N]`).
  static func blockSize(_ granularity: Granularity, shape: [Int]) -> JSONValue {
    let leading = Array(repeating: 1, count: shape.count - 1)
    return switch granularity {
    case .perRow: integers(leading + [shape[shape.count - 1]])
    case .perColumn: integers(shape.indices.map { $0 == 1 ? shape[1] : 1 })
    case .perTensor: integers(shape)
    case .perGroup(let size): integers(leading + [size])
    }
  }

  static func integers(_ values: [Int]) -> JSONValue {
    .array(values.map { .number(String($0)) })
  }

  static func torchDType(_ name: String) -> JSONValue {
    .object([JSONMember("_type", .string("torch.dtype")), JSONMember("_data", .string(name))])
  }

  static func enumValue(_ type: String, _ member: String) -> JSONValue {
    .object([JSONMember("_type", .string(type)), JSONMember("_data", .string(member))])
  }

  static func typed(_ type: String, _ fields: [(String, JSONValue)]) -> JSONValue {
    .object([JSONMember("_type", .string(type)), JSONMember("_data", .object(fields.map { JSONMember($0.0, $0.1) }))])
  }

  /// A granularity as it appears inside tensor attributes (no `_version`).
  static func granularity(_ granularity: Granularity) -> JSONValue {
    switch granularity {
    case .perRow: typed("PerRow", [("dim", .number("-1"))])
    case .perColumn: typed("PerRow", [("dim", .number("1"))])
    case .perTensor: typed("PerTensor", [])
    case .perGroup(let size): typed("PerGroup", [("group_size", .number(String(size)))])
    }
  }
}
