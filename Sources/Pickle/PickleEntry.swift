/// One entry of a pickle checkpoint's state dict.
public struct PickleEntry: Sendable, Equatable {
  /// What the entry holds.
  public enum Value: Sendable, Equatable {
    /// A plain tensor (a `Parameter` counts as one).
    case tensor(PickleTensor)
    /// A torchao 0.18 tensor subclass on torchao's safetensors allowlist.
    case subclass(TorchAOSubclassTensor)
    /// A legacy torchao `AffineQuantizedTensor` with a plain layout.
    case affineQuantized(AffineQuantizedTensor)
  }

  /// The state-dict key.
  public var name: String
  /// The value.
  public var value: Value

  public init(name: String, value: Value) {
    self.name = name
    self.value = value
  }

  /// Every plain tensor the entry holds: itself, or its parts.
  public var tensors: [PickleTensor] {
    switch value {
    case .tensor(let tensor): [tensor]
    case .subclass(let subclass): subclass.parts.map(\.tensor)
    case .affineQuantized(let weight): [weight.data, weight.scale] + (weight.zeroPoint.map { [$0] } ?? [])
    }
  }
}
