import Foundation
import SafeTensors

/// How transformers holds one family of Mixture-of-Experts models in memory, as data: which
/// checkpoint tensors become which in-memory parameters, so that a converter working from the
/// files selects, names and fuses what `from_pretrained` + torchao would (research/moe.md §1, §4).
///
/// Two expert layouts exist:
/// - per expert in the file (Mixtral, the `qwen2_moe` pattern): `<moe>.experts.<e>.<gate|up|down>.weight`
///   `[I, H]`/`[H, I]`, fused in memory as `experts.gate_up_proj = stack_e(cat(gate_e, up_e))`
///   `[E, 2I, H]` and `experts.down_proj = stack_e(down_e)` `[E, H, I]`;
/// - fused and transposed in the file as in memory (gpt-oss, Llama 4): `experts.gate_up_proj`
///   `[E, H, 2I]` and `experts.down_proj` `[E, I, H]`, `[E, in, out]`.
///
/// Routed experts are `nn.Parameter`s, never `nn.Linear` weights, so a plain torchao config never
/// quantizes them; routers are Parameters too, except Llama 4's (`Llama4Router(nn.Linear)`).
struct MoEArchitecture: Sendable {
  /// How the routed experts are stored.
  enum Experts: Sendable {
    /// One 2-D tensor per expert and projection, named `experts.<e>.<name>.weight`; `gate` and
    /// `up` fuse into `gate_up_proj` (gate rows first), `down` into `down_proj`.
    case perExpert(gate: String, up: String, down: String)
    /// Already fused, `[E, in, out]`: `experts.gate_up_proj` and `experts.down_proj`.
    case fusedTransposed
  }

  /// The `model_type`s of `config.json` this entry describes.
  var modelTypes: [String]
  /// transformers' `WeightRenaming`s, file → memory, as literal substrings.
  var renames: [(file: String, memory: String)]
  /// How the routed experts are stored.
  var experts: Experts
  /// The in-memory name of the router's weight within a MoE block (`gate.weight`), when the
  /// router is an `nn.Parameter` (plain configs leave it alone); `nil` when it is an `nn.Linear`.
  var parameterRouter: String?

  /// The table, after transformers 5.24's `conversion_mapping.py`: Mixtral's pattern, the
  /// `qwen2_moe` pattern and the `model_type`s that map to either with no renaming of their own
  /// and a Parameter router named `gate`, gpt-oss and Llama 4.
  static let table: [MoEArchitecture] = [
    MoEArchitecture(
      modelTypes: ["mixtral", "minimax"], renames: [(".block_sparse_moe.", ".mlp.")],
      experts: .perExpert(gate: "w1", up: "w3", down: "w2"), parameterRouter: "gate.weight"),
    MoEArchitecture(
      modelTypes: [
        "qwen2_moe", "qwen3_moe", "qwen3_next", "deepseek_v2", "deepseek_v3", "deepseek_v32", "dots1", "glm4_moe",
        "glm4_moe_lite", "glm_moe_dsa", "olmoe", "flex_olmo", "solar_open", "mellum", "cohere2_moe", "beam",
      ],
      renames: [], experts: .perExpert(gate: "gate_proj", up: "up_proj", down: "down_proj"),
      parameterRouter: "gate.weight"),
    MoEArchitecture(modelTypes: ["gpt_oss"], renames: [], experts: .fusedTransposed, parameterRouter: "router.weight"),
    MoEArchitecture(modelTypes: ["llama4_text"], renames: [], experts: .fusedTransposed, parameterRouter: nil),
  ]

  /// Every `model_type` of the table, sorted.
  static var supportedTypes: [String] { table.flatMap(\.modelTypes).sorted() }

  /// The entry for `modelType`, or `nil`.
  static func named(_ modelType: String) -> MoEArchitecture? {
    table.first { $0.modelTypes.contains(modelType) }
  }

  /// The in-memory name of the checkpoint tensor `name`: the renames applied.
  func memoryName(_ name: String) -> String {
    renames.reduce(name) { $0.replacingOccurrences(of: $1.file, with: $1.memory) }
  }

  /// The file name of the in-memory name `name`: the renames reverted (`revert_weight_conversion`).
  func fileName(_ name: String) -> String {
    renames.reduce(name) { $0.replacingOccurrences(of: $1.memory, with: $1.file) }
  }

  /// The architecture of the model in `directory`, from its `config.json`: `nil` for a model that
  /// is not a Mixture-of-Experts (no `model_type` of the table, no expert tensor and no expert
  /// count in the config).
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) for a MoE model of a type not in the table, or
  ///   a single file (no `config.json`) with expert tensors, naming the supported types.
  static func of(directory: String?, tensorNames: some Sequence<String>, path: String) throws(PipelineError)
    -> MoEArchitecture?
  {
    let config = directory.flatMap(modelConfig(in:))
    let modelType = config?["model_type"]?.string
    if let modelType, let architecture = named(modelType) { return architecture }
    let countKeys = ["num_local_experts", "num_experts", "n_routed_experts"]
    let expertCount = countKeys.lazy.compactMap { config?[$0]?.uint64 }.first ?? 0
    guard expertCount > 1 || tensorNames.contains(where: { $0.firstByteRange(of: ".experts.") != nil }) else {
      return nil
    }
    let what = modelType.map { "model_type '\($0)'" } ?? "a model without config.json"
    throw PipelineError(
      .invalidInput,
      "\(path) is a Mixture-of-Experts model (\(what)) whose expert layout safeshard does not know; converting it "
        + "the dense way would write experts transformers cannot load. Supported MoE model types: "
        + supportedTypes.joined(separator: ", "),
      path: path)
  }

  /// The parsed `config.json` of the model directory `path`, or `nil` when it has none that parses.
  static func modelConfig(in path: String) -> JSONValue? {
    FileManager.default.contents(atPath: join(path, "config.json")).flatMap { try? JSONParser.parse(Array($0)) }
  }

  /// The architecture the `config.json` in the directory `path` names, if any.
  static func declared(in path: String) -> MoEArchitecture? {
    modelConfig(in: path)?["model_type"]?.string.flatMap(named)
  }
}
