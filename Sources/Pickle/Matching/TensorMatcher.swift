import SafeTensors

/// Matches the call shapes torch.save writes for a plain tensor and checks the view:
///
/// - `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
/// - `torch._utils._rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`
/// - `torch._utils._rebuild_tensor(storage, offset, size, stride)` (torch before 1.0)
/// - `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)`, and
///   `_rebuild_parameter_with_state(tensor, requires_grad, hooks, state)` with empty state
/// - `torch._tensor._rebuild_from_type_v2(rebuild, torch.Tensor | Parameter, args, state)`: a
///   plain tensor that carried Python attributes, which are dropped
///
/// `hooks` must be empty; `metadata` may only hold false flags (a conjugated or negated tensor
/// is refused).
struct TensorMatcher {
  /// The storages by key (every persistent id of the pickle has one).
  let storages: [String: PickleStorage]

  /// The most dimensions a tensor may have.
  static let maximumRank = 64

  /// The plain tensor `value` describes.
  ///
  /// - Throws: `unexpectedObject` for anything but the shapes above, `unsupportedTensor`,
  ///   `invalidView` or `viewOutOfBounds`, with the offset of the call.
  func tensor(_ value: PickleValue) throws(PickleError) -> PickleTensor {
    guard case .call(let call) = value else {
      throw PickleError(.unexpectedObject, "\(value.kind), not a tensor")
    }
    do throws(PickleError) {
      return try match(call)
    } catch {
      var located = error
      if located.offset == nil { located.offset = call.offset }
      throw located
    }
  }

  private func match(_ call: PickleCall) throws(PickleError) -> PickleTensor {
    guard call.kind == .reduce, call.state == nil, let function = call.function.global else {
      throw PickleError(.unexpectedObject, "\(call.functionName) with state or as NEWOBJ is not a tensor")
    }
    let arguments = call.arguments
    switch (function.module, function.name, arguments.count) {
    case ("torch._utils", "_rebuild_tensor_v2", 6), ("torch._utils", "_rebuild_tensor_v2", 7):
      try checkHooks(arguments[5])
      if arguments.count == 7 { try checkFlags(arguments[6]) }
      return try view(arguments, dtype: nil)
    case ("torch._utils", "_rebuild_tensor_v3", 7), ("torch._utils", "_rebuild_tensor_v3", 8):
      try checkHooks(arguments[5])
      if arguments.count == 8 { try checkFlags(arguments[7]) }
      guard let dtype = arguments[6].global, dtype.module == "torch" else {
        throw PickleError(.unexpectedObject, "the dtype of _rebuild_tensor_v3 is \(arguments[6].kind)")
      }
      guard let type = PickleGlobals.tensorDTypes[dtype.name] else {
        throw PickleError(.unsupportedTensor, "tensors of \(dtype) have no safetensors type")
      }
      return try view(arguments, dtype: type)
    case ("torch._utils", "_rebuild_tensor", 4):
      return try view(arguments, dtype: nil)
    case ("torch._utils", "_rebuild_parameter", 3):
      try checkHooks(arguments[2])
      return try tensor(arguments[0])
    case ("torch._utils", "_rebuild_parameter_with_state", 4):
      try checkHooks(arguments[2])
      guard Self.isEmpty(arguments[3]) else {
        throw PickleError(.unexpectedObject, "a Parameter with Python state (_rebuild_parameter_with_state)")
      }
      return try tensor(arguments[0])
    case ("torch._tensor", "_rebuild_from_type_v2", 4):
      guard arguments[1].isGlobal("torch", "Tensor") || arguments[1].isGlobal("torch.nn.parameter", "Parameter") else {
        throw PickleError(.subclass, "tensor subclass \(arguments[1].kind) is not on the allowlist")
      }
      guard case .tuple(let inner) = arguments[2], case .dict = arguments[3] else {
        throw PickleError(.unexpectedObject, "_rebuild_from_type_v2 with \(arguments[2].kind) and \(arguments[3].kind)")
      }
      guard let rebuild = arguments[0].global, rebuild.module == "torch._utils",
        rebuild.name.hasPrefix("_rebuild_tensor")
      else { throw PickleError(.unexpectedObject, "_rebuild_from_type_v2 of \(arguments[0].kind)") }
      return try match(PickleCall(function: arguments[0], arguments: inner.items, kind: .reduce, offset: call.offset))
    default:
      throw PickleError(.unexpectedObject, "\(function) with \(arguments.count) arguments is not a tensor")
    }
  }

  /// `storage, offset, size, stride` of a rebuild call, checked against the storage.
  private func view(_ arguments: [PickleValue], dtype: DType?) throws(PickleError) -> PickleTensor {
    guard case .persistentID(let id) = arguments[0], id.items.count >= 3, let key = id.items[2].string,
      let storage = storages[key]
    else {
      throw PickleError(.unexpectedObject, "the tensor's storage is \(arguments[0].kind), not a storage")
    }
    return try PickleTensor(
      dtype: dtype ?? storage.elementType, shape: try Self.integers(arguments[2], "sizes"),
      strides: try Self.integers(arguments[3], "strides"), storageOffset: try Self.integer(arguments[1], "offset"),
      storage: storage)
  }

  private func checkHooks(_ hooks: PickleValue) throws(PickleError) {
    guard case .dict(let dict) = hooks, dict.count == 0 else {
      throw PickleError(.unexpectedObject, "backward hooks are \(hooks.kind), not an empty OrderedDict")
    }
  }

  /// The metadata of v2/v3: `{'conj': True}` or `{'neg': True}` mark views that torch resolves
  /// lazily; only false flags are accepted.
  private func checkFlags(_ metadata: PickleValue) throws(PickleError) {
    switch metadata {
    case .none: return
    case .dict(let dict):
      for (key, value) in dict.members {
        guard case .bool(false) = value else {
          throw PickleError(.unsupportedTensor, "a tensor with the '\(key)' flag set (conjugated or negated view)")
        }
      }
    default:
      throw PickleError(.unexpectedObject, "tensor metadata is \(metadata.kind)")
    }
  }

  static func isEmpty(_ value: PickleValue) -> Bool {
    switch value {
    case .none: true
    case .dict(let dict): dict.count == 0
    case .tuple(let tuple): tuple.items.allSatisfy { if case .none = $0 { true } else { false } }
    default: false
    }
  }

  /// An `Int` (64-bit).
  static func integer(_ value: PickleValue, _ what: String) throws(PickleError) -> Int {
    switch value {
    case .int(let number): return Int(number)
    case .bigInt: throw PickleError(.invalidView, "the \(what) does not fit 64 bits")
    default: throw PickleError(.unexpectedObject, "the \(what) is \(value.kind), not an int")
    }
  }

  /// A tuple, list or `torch.Size` of `Int`s.
  static func integers(_ value: PickleValue, _ what: String) throws(PickleError) -> [Int] {
    var value = value
    if case .call(let call) = value, call.function.isGlobal("torch", "Size"), call.arguments.count == 1 {
      value = call.arguments[0]
    }
    guard let items = value.sequence else {
      throw PickleError(.unexpectedObject, "the \(what) are \(value.kind), not a tuple of ints")
    }
    guard items.count <= maximumRank else {
      throw PickleError(.invalidView, "\(items.count) \(what), more than \(maximumRank)")
    }
    var integers: [Int] = []
    integers.reserveCapacity(items.count)
    for item in items { integers.append(try integer(item, what)) }
    return integers
  }
}
