import SafeTensors

/// One parameter of the model as transformers holds it in memory, and the checkpoint tensors
/// whose bytes, one after another, make it.
///
/// In a dense model every checkpoint tensor is a parameter of its own, under its own name. In a
/// MoE model (``MoEArchitecture``) a module rename gives some parameters another name in memory
/// (Mixtral's `block_sparse_moe` is `mlp`), and per-expert tensors fuse into two 3-D parameters
/// per MoE block: `experts.gate_up_proj = stack_e(cat(gate_e, up_e))`, whose row-major bytes are
/// gate₀, up₀, gate₁, up₁, …, and `experts.down_proj`, down₀, down₁, ….
struct ModelParameter: Sendable {
  /// The in-memory name: what recipe rules match and what the torchao metadata lists.
  var name: String
  /// The name it is stored under in the file (transformers' renames reverted): the flattened
  /// parts of a quantized parameter are named after it.
  var fileName: String
  /// The checkpoint tensors that make it, in order; one for an unfused parameter.
  var inputs: [ConversionPlan.Input]
  /// The in-memory shape.
  var shape: [Int]
  /// The element type.
  var dtype: DType
  /// What it is to transformers.
  var role: ParameterRole
  /// Whether its last two dimensions are `[in, out]` (gpt-oss and Llama 4 experts).
  var isTransposed = false

  /// The parameters of a checkpoint whose tensors are `inputs` (in input order), for
  /// `architecture` (`nil`: a dense model), in the order of their first input tensor.
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) naming the tensor when per-expert tensors do
  ///   not make whole experts: a missing expert or projection, a name the layout does not know,
  ///   or shapes and dtypes that differ between experts.
  static func parameters(of inputs: [ConversionPlan.Input], architecture: MoEArchitecture?, path: String)
    throws(PipelineError) -> [ModelParameter]
  {
    guard let architecture else {
      return inputs.map {
        ModelParameter(
          name: $0.tensor.name, fileName: $0.tensor.name, inputs: [$0], shape: $0.tensor.shape, dtype: $0.tensor.dtype,
          role: .standard)
      }
    }
    var parameters: [ModelParameter] = []
    var blocks: [String: ExpertBlock] = [:]
    var blockOrder: [(String, Int)] = []
    for input in inputs {
      let name = input.tensor.name
      if case .perExpert = architecture.experts, let marker = name.firstByteRange(of: ".experts."),
        !isFused(input.tensor, after: name[marker.upperBound...])
      {
        let module = String(name[..<marker.lowerBound])
        if blocks[module] == nil {
          blocks[module] = ExpertBlock()
          blockOrder.append((module, parameters.count))
          parameters.append(
            ModelParameter(name: "", fileName: "", inputs: [], shape: [], dtype: .bf16, role: .standard))
        }
        try blocks[module]!.add(input, rest: name[marker.upperBound...], architecture: architecture, path: path)
        continue
      }
      let memory = architecture.memoryName(name)
      var role = ParameterRole.standard
      var transposed = false
      if case .fusedTransposed = architecture.experts,
        memory.hasSuffix(".experts.gate_up_proj") || memory.hasSuffix(".experts.down_proj")
      {
        role = .routedExperts
        transposed = true
      } else if case .perExpert = architecture.experts,
        memory.hasSuffix(".experts.gate_up_proj")
          || memory.hasSuffix(".experts.down_proj")
      {
        role = .routedExperts
      } else if let router = architecture.parameterRouter, memory.hasSuffix(".mlp." + router) {
        role = .router
      }
      parameters.append(
        ModelParameter(
          name: memory, fileName: name, inputs: [input], shape: input.tensor.shape, dtype: input.tensor.dtype,
          role: role, isTransposed: transposed))
    }
    // Each MoE block's two fused parameters take the place of its first expert tensor.
    for (module, position) in blockOrder.reversed() {
      let fused = try blocks[module]!.parameters(module: module, architecture: architecture, path: path)
      parameters.replaceSubrange(position...position, with: fused)
    }
    return parameters
  }

  /// Whether `tensor`, named `….experts.` + `rest`, is a block's experts already fused as
  /// transformers holds them (`experts.gate_up_proj` [E, 2I, H], `experts.down_proj` [E, H, I]):
  /// what safeshard writes for a per-expert model, read back dequantized from its torchao output.
  private static func isFused(_ tensor: TensorInfo, after rest: Substring) -> Bool {
    tensor.shape.count == 3 && (rest == "gate_up_proj" || rest == "down_proj")
  }
}

/// The per-expert tensors of one MoE block, gathered by expert and projection.
private struct ExpertBlock {
  private var experts: [Int: [String: ConversionPlan.Input]] = [:]

  mutating func add(_ input: ConversionPlan.Input, rest: Substring, architecture: MoEArchitecture, path: String)
    throws(PipelineError)
  {
    guard case .perExpert(let gate, let up, let down) = architecture.experts else { return }
    let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let expert = Int(parts[0]), expert >= 0, String(expert) == parts[0],
      [gate, up, down].contains(String(parts[1])), parts[2] == "weight", input.tensor.shape.count == 2
    else {
      throw PipelineError(
        .invalidInput,
        "\(path): tensor '\(input.tensor.name)' is not a 2-D experts.<e>.{\(gate),\(up),\(down)}.weight, the "
          + "per-expert layout transformers fuses for this model type",
        path: path, tensor: input.tensor.name)
    }
    guard experts[expert, default: [:]].updateValue(input, forKey: String(parts[1])) == nil else {
      throw PipelineError(.invalidInput, "\(path): tensor '\(input.tensor.name)' repeats", path: path)
    }
  }

  /// `experts.gate_up_proj` and `experts.down_proj` of the block.
  func parameters(module: String, architecture: MoEArchitecture, path: String) throws(PipelineError)
    -> [ModelParameter]
  {
    guard case .perExpert(let gate, let up, let down) = architecture.experts else { return [] }
    let count = experts.count
    var gateUp: [ConversionPlan.Input] = []
    var downs: [ConversionPlan.Input] = []
    for expert in 0..<count {
      guard let projections = experts[expert], let g = projections[gate], let u = projections[up],
        let d = projections[down]
      else {
        let missing = (0..<count).first { experts[$0] == nil } ?? expert
        throw PipelineError(
          .invalidInput,
          "\(path): \(module).experts.\(missing) lacks one of its \(gate)/\(up)/\(down) weights (the block has "
            + "tensors of \(count) experts)",
          path: path, tensor: "\(module).experts.\(missing)")
      }
      gateUp += [g, u]
      downs.append(d)
    }
    let first = gateUp[0].tensor
    let (rows, columns) = (first.shape[0], first.shape[1])
    for (inputs, expected) in [(gateUp, [rows, columns]), (downs, [columns, rows])] {
      for input in inputs where input.tensor.shape != expected || input.tensor.dtype != first.dtype {
        throw PipelineError(
          .invalidInput,
          "\(path): tensor '\(input.tensor.name)' is \(input.tensor.dtype.rawValue) \(input.tensor.shape); the "
            + "experts of \(module) need \(first.dtype.rawValue) \(expected) to fuse",
          path: path, tensor: input.tensor.name)
      }
    }
    let memory = architecture.memoryName(module + ".experts.")
    return [
      ModelParameter(
        name: memory + "gate_up_proj", fileName: module + ".experts.gate_up_proj", inputs: gateUp,
        shape: [count, 2 * rows, columns], dtype: first.dtype, role: .routedExperts),
      ModelParameter(
        name: memory + "down_proj", fileName: module + ".experts.down_proj", inputs: downs,
        shape: [count, columns, rows], dtype: first.dtype, role: .routedExperts),
    ]
  }
}
