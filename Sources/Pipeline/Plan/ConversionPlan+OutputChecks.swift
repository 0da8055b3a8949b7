import SafeTensors
import TorchAO

extension ConversionPlan {
  /// Refuses a torchao checkpoint whose metadata and parts `safeshard verify` would refuse, before
  /// a resharding run keeps that metadata: the same decoding (``TorchAOCheckpoint``), with its
  /// allowlist of `_type`s, so convert never writes an output its own verify rejects.
  ///
  /// - Throws: `invalidInput` naming the tensor and the rule, with the decoding error as cause.
  static func checkKeptTorchAOMetadata(of checkpoint: Checkpoint) throws(PipelineError) {
    let storedName = TorchAOCheckpoint.storedNames(ofModelAt: checkpoint.path)
    guard let problem = TorchAOCheckpoint.problems(in: checkpoint, storedName: storedName).first else { return }
    throw PipelineError(
      .invalidInput, "\(problem); the torchao metadata would be kept as it is, so the output would not verify",
      path: problem.file ?? checkpoint.path, tensor: problem.tensor, cause: problem)
  }

  /// Refuses state-dict names that a torchao-format output cannot hold: a name that is also a
  /// `__metadata__` key (`tensor_names`, or one of `extraKeys` such as transformers' `format`)
  /// would lose its description or the key, and a name without a dot fails torchao's
  /// `unflatten_tensor_state_dict`, which splits every listed name at its last dot. Two names
  /// that differ only in Unicode normalization (NFC and NFD) are refused too: the metadata is a
  /// `[String: String]`, whose keys compare by canonical equivalence, so one description would
  /// replace the other.
  ///
  /// - Throws: `invalidInput` naming the first such tensor.
  static func checkTorchAONames(_ names: [String], extraKeys: Set<String>) throws(PipelineError) {
    var canonical = Set<String>()
    for name in names {
      if !canonical.insert(name).inserted {
        throw PipelineError(
          .invalidInput,
          "tensor '\(name)': another tensor's name differs from it only in Unicode normalization (NFC or NFD); "
            + "torchao's __metadata__ cannot describe both here, so convert it with --recipe reshard", tensor: name)
      }
      if name == "tensor_names" || extraKeys.contains(name) {
        throw PipelineError(
          .invalidInput,
          "tensor '\(name)': the name is also a key of torchao's __metadata__, which would lose one of them; "
            + "rename the tensor or keep it out of a quantized output", tensor: name)
      }
      if !name.utf8.contains(UInt8(ascii: ".")) {
        throw PipelineError(
          .invalidInput,
          "tensor '\(name)': torchao cannot load a name without a dot (unflatten_tensor_state_dict splits each name "
            + "at its last '.'); rename the tensor, or convert with --recipe reshard", tensor: name)
      }
    }
  }
}
