import Foundation
import SafeTensors
import TorchAO

extension TorchAOCheckpoint {
  /// The name each metadata entry of the model at `path` has its parts stored under
  /// (``init(_:storedName:)``): for a MoE model whose `config.json` names an architecture that
  /// renames modules in memory, the file's name (transformers' renames reverted); else the
  /// entry's own.
  public static func storedNames(ofModelAt path: String) -> @Sendable (String) -> String {
    guard let architecture = MoEArchitecture.declared(in: path) else { return { $0 } }
    return { architecture.fileName($0) }
  }

  /// What makes transformers load this torchao checkpoint of a MoE model with randomly
  /// initialised experts although it loads "successfully" (moe.md §4.6): quantized experts
  /// stored per expert (transformers 5 fuses them in memory, so their parts are unexpected and the
  /// fused parameters missing), and metadata under the file's module names instead of the
  /// in-memory ones. One warning per kind, naming the first entry; `[]` when neither shows.
  public func moeWarnings(ofModelAt path: String) -> [String] {
    var warnings: [String] = []
    let quantized = metadata.entries.filter { $0.description.subclass != nil }.map(\.name)
    if let perExpert = quantized.first(where: Self.isPerExpert) {
      warnings.append(
        "quantized experts are stored per expert ('\(perExpert)'); transformers 5 holds a MoE block's experts fused "
          + "(experts.gate_up_proj, experts.down_proj) and loads this model with randomly initialised experts. "
          + "Convert the unquantized model with safeshard to store them fused.")
    }
    if let architecture = MoEArchitecture.declared(in: path),
      let renamed = metadata.entries.first(where: { architecture.memoryName($0.name) != $0.name })
    {
      warnings.append(
        "the metadata lists '\(renamed.name)' under the file's module name; transformers looks up the in-memory "
          + "name '\(architecture.memoryName(renamed.name))' and does not load it")
    }
    return warnings
  }

  /// Whether `name` is a per-expert parameter: `….experts.<e>.…`.
  private static func isPerExpert(_ name: String) -> Bool {
    guard let marker = name.firstByteRange(of: ".experts.") else { return false }
    let rest = name[marker.upperBound...]
    return rest.first?.isASCII == true && rest.first?.isNumber == true
  }
}
