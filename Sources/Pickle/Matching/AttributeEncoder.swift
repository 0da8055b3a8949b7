import SafeTensors

/// Turns the non-tensor attributes of a torchao subclass into the JSON torchao's
/// `TensorSubclassAttributeJSONEncoder` writes for them.
///
/// Accepted: `None`, bools, ints (64-bit), finite floats, strings, tuples and lists (as lists),
/// dicts with string keys, `torch.Size`, `torch.<dtype>` (`{"_type": "torch.dtype", "_data":
/// name}`), the allowlisted enums (`{"_type": Enum, "_data": MEMBER}`), dataclasses
/// (NEWOBJ + BUILD of `__dict__`) and NamedTuples (NEWOBJ or REDUCE with positional fields), both
/// as `{"_type": Class, "_data": {fields in declaration order}}`. Anything else is refused. A
/// budget of visited values bounds the work on shared (memoized) structures.
struct AttributeEncoder {
  /// The most values visited for one subclass's attributes.
  static let budget = 10_000
  private var visited = 0

  /// The JSON of `value`.
  ///
  /// - Throws: `subclass` for a value outside the list above, `tooDeep` past the budget.
  mutating func encode(_ value: PickleValue) throws(PickleError) -> JSONValue {
    visited += 1
    guard visited <= Self.budget else {
      throw PickleError(.tooDeep, "attribute values with more than \(Self.budget) parts")
    }
    switch value {
    case .none: return .null
    case .bool(let flag): return .bool(flag)
    case .int(let number): return .number(String(number))
    case .float(let number):
      guard number.isFinite else { throw PickleError(.subclass, "a non-finite float attribute (\(number))") }
      // Swift's shortest round-trip form is Python's `repr` (`1e-05`, `448.0`, `1e+16`).
      return .number(number.description)
    case .string(let text): return .string(text)
    case .tuple, .list:
      var elements: [JSONValue] = []
      for item in value.sequence ?? [] { elements.append(try encode(item)) }
      return .array(elements)
    case .dict(let dict):
      var members: [JSONMember] = []
      for (key, item) in dict.members { members.append(JSONMember(key, try encode(item))) }
      return .object(members)
    case .global(let global) where global.module == "torch" && PickleGlobals.isDType(global.name):
      return .object([JSONMember("_type", .string("torch.dtype")), JSONMember("_data", .string(global.name))])
    case .call(let call):
      return try encode(call)
    default:
      throw PickleError(.subclass, "attribute value \(value.kind) is not allowed")
    }
  }

  private mutating func encode(_ call: PickleCall) throws(PickleError) -> JSONValue {
    guard let type = call.function.global else { throw PickleError(.subclass, "a call of \(call.functionName)") }
    let arguments = call.arguments
    if type.module == "torch" && type.name == "Size" && arguments.count == 1 && call.state == nil {
      return try encode(arguments[0])
    }
    guard type.module == "torchao" || type.module.hasPrefix("torchao.") else {
      throw PickleError(.subclass, "attribute value \(call.functionName)(...) is not allowed")
    }
    if let members = TorchAONames.enums[type.name], call.kind == .reduce, arguments.count == 1, call.state == nil {
      let key: TorchAONames.Value
      switch arguments[0] {
      case .int(let number): key = .int(number)
      case .string(let text): key = .string(text)
      default: throw PickleError(.subclass, "\(type.name) member \(arguments[0].kind)")
      }
      guard let member = members[key] else {
        throw PickleError(.subclass, "\(type.name) has no member of value \(key)")
      }
      return Self.typed(type.name, .string(member))
    }
    if let fields = TorchAONames.namedTuples[type.name], arguments.count == fields.count, call.state == nil {
      var members: [JSONMember] = []
      for (field, argument) in zip(fields, arguments) { members.append(JSONMember(field, try encode(argument))) }
      return Self.typed(type.name, .object(members))
    }
    if let fields = TorchAONames.dataclasses[type.name], call.kind == .newObject, arguments.isEmpty {
      var state: PickleDict?
      switch call.state {
      case .dict(let dict)?: state = dict
      // A dataclass with `__slots__` pickles its state as `(None, slots)`.
      case .tuple(let pair)? where pair.items.count == 2:
        if case .none = pair.items[0], case .dict(let dict) = pair.items[1] { state = dict }
      case nil where fields.isEmpty: state = PickleDict(ordered: false)
      default: break
      }
      guard let state, Set(state.keys) == Set(fields), state.count == fields.count else {
        throw PickleError(.subclass, "\(type.name) has state \(call.state?.kind ?? "None"), not its fields \(fields)")
      }
      var members: [JSONMember] = []
      for field in fields { members.append(JSONMember(field, try encode(state[field]!))) }
      return Self.typed(type.name, .object(members))
    }
    throw PickleError(
      .subclass, "attribute value \(type)(\(arguments.count) arguments) is not an allowlisted enum or config")
  }

  private static func typed(_ type: String, _ data: JSONValue) -> JSONValue {
    .object([JSONMember("_type", .string(type)), JSONMember("_data", data)])
  }
}
