import SafeTensors

/// Tensor lists shaped like real checkpoints, with Hugging Face Llama names.
enum SyntheticModel {
  /// The metadata a `transformers` checkpoint carries, plus two keys of ours.
  static let metadata = [
    "format": "pt",
    "producer": "safeshard header-bench",
    "model_type": "qwen3_moe",
    "torch_dtype": "bfloat16",
  ]

  /// `count` tensors of a Qwen3-MoE-like model (hidden 2048, 128 experts of width 768, as in
  /// Qwen3-30B-A3B) with as many layers as it takes: the embedding, then per layer the
  /// attention, norms, router and experts, ending with the final norm and the LM head.
  ///
  /// A model with 100,000 tensors in one file is a large mixture of experts; this one needs
  /// about 255 layers.
  static func mixtureOfExperts(count: Int) -> [TensorSpec] {
    let hidden = 2048
    let vocabulary = 151_936
    let experts = 128
    let expertWidth = 768
    var specs = [TensorSpec(name: "model.embed_tokens.weight", dtype: .bf16, shape: [vocabulary, hidden])]
    specs.reserveCapacity(count)
    let ending = [
      TensorSpec(name: "model.norm.weight", dtype: .bf16, shape: [hidden]),
      TensorSpec(name: "lm_head.weight", dtype: .bf16, shape: [vocabulary, hidden]),
    ]
    var layer = 0
    while specs.count < count - ending.count {
      let prefix = "model.layers.\(layer)"
      var layerSpecs = [
        TensorSpec(name: "\(prefix).input_layernorm.weight", dtype: .bf16, shape: [hidden]),
        TensorSpec(name: "\(prefix).self_attn.q_proj.weight", dtype: .bf16, shape: [4096, hidden]),
        TensorSpec(name: "\(prefix).self_attn.k_proj.weight", dtype: .bf16, shape: [512, hidden]),
        TensorSpec(name: "\(prefix).self_attn.v_proj.weight", dtype: .bf16, shape: [512, hidden]),
        TensorSpec(name: "\(prefix).self_attn.o_proj.weight", dtype: .bf16, shape: [hidden, 4096]),
        TensorSpec(name: "\(prefix).self_attn.q_norm.weight", dtype: .bf16, shape: [128]),
        TensorSpec(name: "\(prefix).self_attn.k_norm.weight", dtype: .bf16, shape: [128]),
        TensorSpec(name: "\(prefix).post_attention_layernorm.weight", dtype: .bf16, shape: [hidden]),
        TensorSpec(name: "\(prefix).mlp.gate.weight", dtype: .bf16, shape: [experts, hidden]),
      ]
      for expert in 0..<experts {
        let expertPrefix = "\(prefix).mlp.experts.\(expert)"
        layerSpecs += [
          TensorSpec(name: "\(expertPrefix).gate_proj.weight", dtype: .bf16, shape: [expertWidth, hidden]),
          TensorSpec(name: "\(expertPrefix).up_proj.weight", dtype: .bf16, shape: [expertWidth, hidden]),
          TensorSpec(name: "\(expertPrefix).down_proj.weight", dtype: .bf16, shape: [hidden, expertWidth]),
        ]
      }
      specs += layerSpecs.prefix(count - ending.count - specs.count)
      layer += 1
    }
    return specs + ending.suffix(count - specs.count)
  }

  /// Whole decoder layers of a Llama-3-8B-like model (hidden 4096, MLP 14336, 8 KV heads),
  /// 416 MiB each, enough of them to reach `bytes`.
  static func denseLayers(atLeast bytes: Int) -> [TensorSpec] {
    let hidden = 4096
    let mlp = 14336
    let kv = 1024
    var specs: [TensorSpec] = []
    var total = 0
    var layer = 0
    while total < bytes {
      let prefix = "model.layers.\(layer)"
      let layerSpecs = [
        TensorSpec(name: "\(prefix).input_layernorm.weight", dtype: .bf16, shape: [hidden]),
        TensorSpec(name: "\(prefix).self_attn.q_proj.weight", dtype: .bf16, shape: [hidden, hidden]),
        TensorSpec(name: "\(prefix).self_attn.k_proj.weight", dtype: .bf16, shape: [kv, hidden]),
        TensorSpec(name: "\(prefix).self_attn.v_proj.weight", dtype: .bf16, shape: [kv, hidden]),
        TensorSpec(name: "\(prefix).self_attn.o_proj.weight", dtype: .bf16, shape: [hidden, hidden]),
        TensorSpec(name: "\(prefix).post_attention_layernorm.weight", dtype: .bf16, shape: [hidden]),
        TensorSpec(name: "\(prefix).mlp.gate_proj.weight", dtype: .bf16, shape: [mlp, hidden]),
        TensorSpec(name: "\(prefix).mlp.up_proj.weight", dtype: .bf16, shape: [mlp, hidden]),
        TensorSpec(name: "\(prefix).mlp.down_proj.weight", dtype: .bf16, shape: [hidden, mlp]),
      ]
      total += layerSpecs.reduce(0) { $0 + $1.shape.reduce(2, *) }
      specs += layerSpecs
      layer += 1
    }
    return specs
  }
}
