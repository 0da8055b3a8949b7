/// The torchao classes, config types and enums a pickle may name, and how torchao's
/// safetensors encoder (`TensorSubclassAttributeJSONEncoder`) writes each.
enum TorchAONames {
  /// A torchao 0.18 tensor subclass: its attribute and data-part names as torchao lists them.
  struct Subclass {
    /// `_data` keys, in torchao's order (`optional_tensor_attribute_names` then
    /// `tensor_attribute_names`).
    var attributes: [String]
    /// `optional_tensor_data_names`, then `tensor_data_names`: the order of
    /// `_tensor_data_names`, optional parts listed only when present.
    var optionalParts: [String]
    var requiredParts: [String]
    /// Attributes torchao reads from the wrapper tensor rather than `__dict__`: `dtype` (the
    /// wrapper's dtype) and `shape` (its size).
    var wrapperAttributes: Set<String>

    var parts: [String] { optionalParts + requiredParts }
  }

  /// torchao's safetensors allowlist (`ALLOWED_TENSORS_SUBCLASSES`, as
  /// `TensorDescription.allowedSubclasses`).
  static let subclasses: [String: Subclass] = [
    "Int8Tensor": Subclass(
      attributes: ["act_quant_kwargs", "reduce_range", "block_size", "dtype"],
      optionalParts: ["zero_point", "act_quant_scale", "act_quant_zero_point", "act_pre_scale"],
      requiredParts: ["qdata", "scale"], wrapperAttributes: ["dtype"]),
    "Float8Tensor": Subclass(
      attributes: ["block_size", "mm_config", "act_quant_kwargs", "kernel_preference", "dtype"],
      optionalParts: [], requiredParts: ["qdata", "scale"], wrapperAttributes: ["dtype"]),
    "IntxUnpackedToInt8Tensor": Subclass(
      attributes: ["target_dtype", "block_size", "dtype", "activation_quantization"],
      optionalParts: [], requiredParts: ["qdata", "scale", "zero_point"], wrapperAttributes: ["dtype"]),
    "Int4Tensor": Subclass(
      attributes: ["activation_dtype", "block_size", "shape"], optionalParts: ["act_pre_scale"],
      requiredParts: ["qdata", "scale", "zero_point"], wrapperAttributes: ["shape"]),
    "Int4PlainInt32Tensor": Subclass(
      attributes: ["block_size", "shape"], optionalParts: ["act_pre_scale"],
      requiredParts: ["qdata", "scale", "zero_point"], wrapperAttributes: ["shape"]),
    "Int4TilePackedTo4dTensor": Subclass(
      attributes: ["block_size", "shape"], optionalParts: ["act_pre_scale"],
      requiredParts: ["qdata", "scale_and_zero"],
      wrapperAttributes: ["shape"]),
    "MXTensor": Subclass(
      attributes: [
        "elem_dtype", "block_size", "orig_dtype", "kernel_preference", "act_quant_kwargs", "is_swizzled_scales",
      ],
      optionalParts: [], requiredParts: ["qdata", "scale"], wrapperAttributes: []),
    "NVFP4Tensor": Subclass(
      attributes: ["is_swizzled_scales", "use_triton_kernel", "act_quant_kwargs", "block_size", "orig_dtype"],
      optionalParts: ["per_tensor_scale", "act_per_tensor_scale"], requiredParts: ["qdata", "scale"],
      wrapperAttributes: []),
  ]

  /// Dataclasses pickled as NEWOBJ + BUILD(`__dict__`), with their fields in declaration order
  /// (the order torchao's encoder writes them).
  static let dataclasses: [String: [String]] = [
    "PerRow": ["dim"], "PerTensor": [], "PerGroup": ["group_size"], "PerAxis": ["axis"],
    "PerBlock": ["block_size"], "PerToken": [],
    "QuantizeTensorToInt8Kwargs": ["granularity", "mapping_type", "reduce_range"],
    "QuantizeTensorToFloat8Kwargs": [
      "float8_dtype", "granularity", "mm_config", "hp_value_lb", "hp_value_ub", "kernel_preference",
    ],
    "QuantizeTensorToMXKwargs": [
      "elem_dtype", "block_size", "scaling_mode", "kernel_preference", "is_swizzled_scales",
    ],
    "QuantizeTensorToNVFP4Kwargs": [
      "block_size", "is_swizzled_scales", "use_triton_kernel", "use_dynamic_per_tensor_scale",
    ],
  ]

  /// NamedTuples, pickled as NEWOBJ (or REDUCE) with their fields as positional arguments.
  static let namedTuples: [String: [String]] = [
    "Float8MMConfig": ["emulate", "use_fast_accum", "pad_inner_dim"]
  ]

  /// An enum member as pickled (`REDUCE(EnumClass, (value,))`) and its member name, which
  /// torchao's encoder writes.
  enum Value: Hashable {
    case int(Int64)
    case string(String)
  }

  /// Enums: pickled value → member name.
  static let enums: [String: [Value: String]] = [
    "KernelPreference": [
      .string("auto"): "AUTO", .string("torch"): "TORCH", .string("mslk"): "MSLK", .string("emulated"): "EMULATED",
      .string("triton"): "TRITON",
    ],
    "MappingType": [.int(1): "SYMMETRIC", .int(2): "SYMMETRIC_NO_CLIPPING_ERR", .int(3): "ASYMMETRIC"],
    "ScaleCalculationMode": [
      .string("floor"): "FLOOR", .string("rceil"): "RCEIL", .string("ceil"): "CEIL", .string("even"): "EVEN",
    ],
  ]

  /// Legacy (torchao ≤ 0.17) classes read for dequantization; see ``AffineQuantizedMatcher``.
  static let affineQuantized: Set<String> = [
    "AffineQuantizedTensor", "PlainAQTTensorImpl", "PlainLayout", "Float8AQTTensorImpl", "Float8Layout",
    "ZeroPointDomain", "LinearActivationQuantizedTensor", "Int4CPUAQTTensorImpl", "Int4CPULayout",
    "TensorCoreTiledAQTTensorImpl", "TensorCoreTiledLayout",
  ]

  /// The activation-quantization functions a legacy `LinearActivationQuantizedTensor` names
  /// (only as a name; never called).
  static let inputQuantizationFunctions: Set<String> = [
    "_int8_symm_per_token_reduced_range_quant", "_int8_asymm_per_token_quant", "_int8_symm_per_token_quant",
  ]

  /// Whether `name` is a torchao name the pickle may mention (under a `torchao` module).
  static func isKnown(_ name: String) -> Bool {
    subclasses[name] != nil || dataclasses[name] != nil || namedTuples[name] != nil || enums[name] != nil
      || affineQuantized.contains(name) || inputQuantizationFunctions.contains(name)
  }
}
