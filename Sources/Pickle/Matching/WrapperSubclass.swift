/// The call shape torch.save writes for a wrapper tensor subclass with Python state:
/// `torch._tensor._rebuild_from_type_v2(torch._utils._rebuild_wrapper_subclass, C,
/// (C, dtype, size, stride, storage_offset, layout, device, requires_grad), state)`, where
/// `state` is the instance's `__dict__`.
struct WrapperSubclass {
  /// C, a torchao class.
  var type: PickleGlobal
  /// The wrapper's dtype name (`bfloat16`).
  var dtype: String
  /// The wrapper's size.
  var shape: [Int]
  /// `__dict__`.
  var state: PickleDict
  /// The offset of the call.
  var offset: Int

  /// The subclass `call` describes, `nil` when it is not a wrapper-subclass rebuild.
  ///
  /// - Throws: `subclass` when the class is not a torchao one; `unexpectedObject` when the
  ///   arguments do not have the shape above.
  init?(_ call: PickleCall) throws(PickleError) {
    let arguments = call.arguments
    guard call.kind == .reduce, call.function.isGlobal("torch._tensor", "_rebuild_from_type_v2"),
      arguments.count == 4, arguments[0].isGlobal("torch._utils", "_rebuild_wrapper_subclass")
    else { return nil }
    func fail(_ message: String) -> PickleError { PickleError(.unexpectedObject, message, offset: call.offset) }
    guard let type = arguments[1].global, type.module == "torchao" || type.module.hasPrefix("torchao.") else {
      throw PickleError(.subclass, "tensor subclass \(arguments[1].kind) is not on the allowlist", offset: call.offset)
    }
    guard call.state == nil, case .tuple(let wrapper) = arguments[2], wrapper.items.count == 8,
      wrapper.items[0].global == type
    else {
      throw fail(
        "\(type): the wrapper arguments are not (\(type.name), dtype, size, stride, offset, layout, device, requires_grad)"
      )
    }
    let items = wrapper.items
    guard let dtype = items[1].global, dtype.module == "torch", PickleGlobals.isDType(dtype.name) else {
      throw fail("\(type): the wrapper dtype is \(items[1].kind)")
    }
    let shape = try TensorMatcher.integers(items[2], "sizes")
    _ = try TensorMatcher.integers(items[3], "strides")
    _ = try TensorMatcher.integer(items[4], "offset")
    guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("\(type): negative size in \(shape)") }
    guard case .call(let layout) = items[5], layout.function.isGlobal("torch.serialization", "_get_layout"),
      layout.arguments.count == 1, layout.arguments[0].string == "torch.strided"
    else { throw fail("\(type): the layout is \(items[5].kind), not _get_layout('torch.strided')") }
    guard case .call(let device) = items[6], device.function.isGlobal("torch", "device") else {
      throw fail("\(type): the device is \(items[6].kind), not torch.device(...)")
    }
    guard case .bool = items[7] else { throw fail("\(type): requires_grad is \(items[7].kind)") }
    guard case .dict(let state) = arguments[3] else {
      throw fail("\(type): the state is \(arguments[3].kind), not a dict")
    }
    if let dunder = state.keys.first(where: { $0.hasPrefix("__") }) {
      throw PickleError(.subclass, "\(type.name): state key '\(dunder)' is refused", offset: call.offset)
    }
    self.type = type
    self.dtype = dtype.name
    self.shape = shape
    self.state = state
    self.offset = call.offset
  }
}
