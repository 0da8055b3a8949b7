import TorchAO

/// A conversion recipe: which tensors to quantize with which torchao config, and defaults for
/// shard size, memory and layout that the command line may override.
///
/// Recipes are YAML documents: the built-in ones (``builtinNames``, from `Pipelines/*.yaml`) or
/// any file (``load(_:)``). Every key but `quantize.scheme` and `rules[].match` is optional:
///
/// ```yaml
/// name: my-recipe                  # default: the file name without .yaml
/// dequantize: true                 # read an FP8/MXFP4 input as its bfloat16 values (implied by quantize)
/// quantize:                        # the default config; omitted: copy tensors unchanged (reshard)
///   scheme: int8-weight-only       # see the table below
///   granularity: per-row           # scheme parameters, each with torchao's default
/// rules:                           # per-tensor exceptions, tried in order, first match wins
///   - match: "re:.*\\.mlp\\.down_proj\\.weight"   # re:REGEX (full match) or a glob (* and ?)
///     skip: true                                  # keep the tensor as it is
///   - match: "*.self_attn.*"
///     quantize: { scheme: float8-weight-only }    # quantize with this config instead
/// shard:
///   max-size: 5GB                  # largest output shard (see ByteSize)
///   layout: input                  # tensor order in the shards: input | canonical
/// memory:
///   budget: 1GiB                   # bytes the conversion may hold in memory
///   spill-compression: lz4         # staging spill files: lz4 | none
/// ```
///
/// Schemes (`quantize.scheme`, also inside a rule) and their parameters; the first value listed
/// is the default, torchao's default for that config:
///
/// - `int8-weight-only`, `Int8WeightOnlyConfig(version=2)`: `granularity` per-row, per-tensor or
///   per-group:N.
/// - `int8-dynamic`, `Int8DynamicActivationInt8WeightConfig(version=2)`: `granularity` per-row or
///   per-tensor; `activation-mapping` symmetric or asymmetric; `reduce-range` false or true.
/// - `float8-weight-only`, `Float8WeightOnlyConfig`: `granularity` per-row, per-tensor or per-group:N.
/// - `float8-dynamic`, `Float8DynamicActivationFloat8WeightConfig`: `granularity` per-tensor or
///   per-row (the same for activations and weights).
/// - `intx-weight-only`, `IntxWeightOnlyConfig`: `bits` 8 (1–8); `granularity` per-row (torchao's
///   `PerAxis(0)`) or per-group:N; `mapping` symmetric, asymmetric or symmetric-no-clipping-error;
///   `scale-dtype` the weight's own, or bfloat16, float16, float32.
/// - `int8-dynamic-intx`, `Int8DynamicActivationIntxWeightConfig`: as `intx-weight-only`, except
///   that `granularity` defaults to per-group:32.
/// - `int4-weight-only`, `Int4WeightOnlyConfig`: `group-size` 128, or 32, 64, 256.
/// - `mx`, `MXDynamicActivationMXWeightConfig`: `element` fp8 or fp4 (activations and weights);
///   `scaling` rceil or floor.
/// - `nvfp4`, `NVFP4WeightOnlyConfig`: `per-tensor-scale` true or false.
/// - `nvfp4-dynamic`, `NVFP4DynamicActivationNVFP4WeightConfig`: `per-tensor-scale` true or false.
///
/// Patterns starting with `*` must be quoted in YAML. Strings, integers and booleans must be
/// written as such (`bits: 4`, not `bits: "4"`); sizes may be an integer or a string with a unit.
/// Unknown keys, values of the wrong type, unknown names and impossible parameters are refused
/// with a ``RecipeError`` that names the file, the line and the key path.
/// ``selection(name:shape:dtype:)`` applies a recipe to one tensor.
public struct Recipe: Sendable, Hashable {
  /// A per-tensor exception to the recipe's default selection.
  public struct Rule: Sendable, Hashable {
    /// What a rule does with the tensors it matches.
    public enum Action: Sendable, Hashable {
      /// Quantize with this config (if torchao takes the tensor), even an embedding, the output
      /// projection or a 3-D expert tensor.
      case quantize(TorchAOConfig)
      /// Keep the tensor as it is.
      case skip
    }

    /// The tensors the rule applies to.
    public var pattern: TensorPattern
    /// What it does with them.
    public var action: Action

    /// A rule that does `action` to the tensors `pattern` matches.
    public init(_ pattern: TensorPattern, _ action: Action) {
      self.pattern = pattern
      self.action = action
    }
  }

  /// The recipe's name (`name`; for a file without one, the file name without its extension).
  public var name: String
  /// The config for every tensor no rule matches (`quantize`); `nil` copies them unchanged
  /// (the `reshard` recipe).
  public var defaultConfig: TorchAOConfig?
  /// Per-tensor exceptions (`rules`), tried in order; the first that matches a tensor decides.
  public var rules: [Rule]
  /// Whether a quantized input is read as its dequantized values even when nothing is
  /// quantized (`dequantize`; the `dequantize` recipe). A recipe that quantizes always reads
  /// them (``dequantizesInput``).
  public var dequantizes: Bool
  /// The largest output shard in bytes (`shard.max-size`), if the recipe sets one.
  public var maxShardSize: Int?
  /// The memory budget in bytes (`memory.budget`), if the recipe sets one.
  public var memoryBudget: Int?
  /// How spilled pieces are stored (`memory.spill-compression`), if the recipe says.
  public var spillCompression: SpillCompression?
  /// The order of tensors in the shards (`shard.layout`), if the recipe says.
  public var layout: ConversionOptions.Layout?

  /// A recipe with the given parts; see the type's documentation for what each means.
  public init(
    name: String, defaultConfig: TorchAOConfig?, rules: [Rule] = [], dequantizes: Bool = false,
    maxShardSize: Int? = nil,
    memoryBudget: Int? = nil, spillCompression: SpillCompression? = nil, layout: ConversionOptions.Layout? = nil
  ) {
    self.name = name
    self.defaultConfig = defaultConfig
    self.rules = rules
    self.dequantizes = dequantizes
    self.maxShardSize = maxShardSize
    self.memoryBudget = memoryBudget
    self.spillCompression = spillCompression
    self.layout = layout
  }
}
