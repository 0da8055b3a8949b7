import Quantization

/// A torchao weight-quantization config: one of the configs safeshard reproduces, with the
/// parameters that change what torchao writes.
///
/// A config decides, for one weight, whether torchao quantizes it (``decision(shape:source:)``:
/// some shapes are left as plain tensors without a word, some are refused), which numerics do it
/// (``scheme(source:)``), which metadata entry describes the result
/// (``description(shape:source:)``), and what transformers writes into `config.json`
/// (``transformersQuantizationConfig``).
public enum TorchAOConfig: Sendable, Hashable {
  /// `Int8WeightOnlyConfig(granularity=…, version=2)`.
  case int8WeightOnly(Granularity)
  /// `Int8DynamicActivationInt8WeightConfig(granularity=…, act_mapping_type=…, reduce_range=…, version=2)`.
  case int8Dynamic(Granularity, activationMapping: IntxMapping, reduceRange: Bool)
  /// `Float8WeightOnlyConfig(granularity=…)`.
  case float8WeightOnly(Granularity)
  /// `Float8DynamicActivationFloat8WeightConfig(granularity=…)`, the same granularity for
  /// activations and weights; ``Granularity/perColumn`` is `granularity=[PerRow(), PerRow(1)]`
  /// (per-row activations).
  case float8Dynamic(Granularity)
  /// `IntxWeightOnlyConfig(weight_dtype=int<bits>, granularity=…, mapping_type=…, scale_dtype=…)`;
  /// ``Granularity/perRow`` is torchao's `PerAxis(0)`.
  case intxWeightOnly(bits: Int, Granularity, mapping: IntxMapping, scaleFormat: FloatFormat?)
  /// `Int8DynamicActivationIntxWeightConfig(weight_dtype=int<bits>, weight_granularity=…,
  /// weight_mapping_type=…, weight_scale_dtype=…)` with asymmetric per-token activations.
  case int8DynamicIntx(bits: Int, Granularity, mapping: IntxMapping, scaleFormat: FloatFormat?)
  /// `Int4WeightOnlyConfig(group_size=…)`, plain packing.
  case int4WeightOnly(groupSize: Int)
  /// `MXDynamicActivationMXWeightConfig(activation_dtype=e, weight_dtype=e, scaling_mode=…)`.
  case mx(MXElement, MXScaling)
  /// `NVFP4WeightOnlyConfig(use_dynamic_per_tensor_scale=…)`.
  case nvfp4WeightOnly(perTensorScale: Bool)
  /// `NVFP4DynamicActivationNVFP4WeightConfig(use_dynamic_per_tensor_scale=…)`.
  case nvfp4Dynamic(perTensorScale: Bool)

  /// What torchao does with one weight.
  public enum Decision: Sendable, Equatable {
    /// It quantizes it.
    case quantize
    /// It leaves it a plain tensor, silently; the reason says why.
    case keep(reason: String)
  }

  /// The numerics of this config for weights in `source` format.
  public func scheme(source: FloatFormat) -> any QuantizationScheme {
    switch self {
    case .int8WeightOnly(let granularity): Int8Scheme(source: source, granularity: granularity)
    case .int8Dynamic(let granularity, _, let reduceRange):
      Int8Scheme(source: source, granularity: granularity, reduceRange: reduceRange)
    case .float8WeightOnly(let granularity), .float8Dynamic(let granularity):
      Float8Scheme(source: source, granularity: granularity)
    case .intxWeightOnly(let bits, let granularity, let mapping, let scaleFormat),
      .int8DynamicIntx(let bits, let granularity, let mapping, let scaleFormat):
      IntxScheme(source: source, bits: bits, mapping: mapping, granularity: granularity, scaleFormat: scaleFormat)
    case .int4WeightOnly(let groupSize): Int4Scheme(source: source, groupSize: groupSize)
    case .mx(let element, let scaling): MXScheme(source: source, element: element, scaling: scaling)
    case .nvfp4WeightOnly(let perTensorScale), .nvfp4Dynamic(let perTensorScale):
      NVFP4Scheme(source: source, usesPerTensorScale: perTensorScale)
    }
  }

  /// Whether torchao quantizes a weight of `shape` in `source` format.
  ///
  /// torchao keeps two kinds of weight as plain tensors without a word (SPEC §9.1): float8 with
  /// dynamic activations when N or K is not a multiple of 16, and int4 when K is not a multiple
  /// of the group size. Everything else it quantizes or refuses.
  ///
  /// - Throws: `unsupported` for input torchao refuses (float8 dynamic per-row on weights that
  ///   are not bf16, a shape the scheme cannot take), with torchao's reason.
  public func decision(shape: [Int], source: FloatFormat) throws(TorchAOError) -> Decision {
    guard shape.count >= 2 else {
      throw TorchAOError(.unsupported, "torchao quantizes weights of 2 or 3 dimensions, not \(shape)")
    }
    let rows = shape[shape.count - 2]
    let columns = shape[shape.count - 1]
    switch self {
    case .float8Dynamic(let granularity):
      if rows % 16 != 0 || columns % 16 != 0 {
        return .keep(reason: "float8 with dynamic activations needs N and K to be multiples of 16, shape is \(shape)")
      }
      if granularity == .perRow || granularity == .perColumn, source != .bf16 {
        throw TorchAOError(
          .unsupported, "float8 dynamic per-row quantization needs bfloat16 weights, these are \(source.torchName)")
      }
    case .int4WeightOnly(let groupSize) where columns % groupSize != 0:
      return .keep(reason: "int4 needs K to be a multiple of the group size \(groupSize), shape is \(shape)")
    default:
      break
    }
    do {
      _ = try scheme(source: source).outputLayout(shape: shape)
    } catch {
      throw TorchAOError(.unsupported, "\(error)")
    }
    return .quantize
  }
}

extension Granularity {
  /// The activation granularity torchao pairs with this weight granularity in a dynamic config:
  /// the same, except per-row (`PerRow()`) for the weight's per-column `PerRow(1)`.
  var activation: Granularity { self == .perColumn ? .perRow : self }
}

extension FloatFormat {
  /// torch's name of the dtype: `bfloat16`, `float16`, `float32`.
  public var torchName: String {
    switch self {
    case .bf16: "bfloat16"
    case .fp16: "float16"
    case .fp32: "float32"
    }
  }

  /// The format torch calls `name`, or `nil`.
  public init?(torchName name: String) {
    guard let format = Self.allCases.first(where: { $0.torchName == name }) else { return nil }
    self = format
  }
}
