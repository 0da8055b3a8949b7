import SafeTensors

/// A value of the symbolic pickle machine: data, or a name and a call that are never executed.
///
/// Containers are reference types, so a memo entry fetched a million times is one object (a
/// memo bomb costs nothing). A container becomes frozen when it is put inside another value and
/// can no longer change; with ``PickleMachine`` refusing to put a container inside itself, no
/// value can contain a cycle, and every value's ``depth`` is fixed when it is built.
enum PickleValue {
  case none
  case bool(Bool)
  case int(Int64)
  /// An integer outside `Int64`: its little-endian two's-complement bytes.
  case bigInt([UInt8])
  case float(Double)
  case string(String)
  case bytes([UInt8])
  case tuple(PickleTuple)
  case list(PickleList)
  case dict(PickleDict)
  /// `module.name`, as GLOBAL or STACK_GLOBAL named it. Nothing is imported.
  case global(PickleGlobal)
  /// The result of REDUCE or NEWOBJ: a call never made.
  case call(PickleCall)
  /// The persistent id of BINPERSID: `('storage', type, key, location, numel, ...)`.
  case persistentID(PickleTuple)

  /// How deeply the value nests (0 for a scalar).
  var depth: Int {
    switch self {
    case .tuple(let tuple), .persistentID(let tuple): tuple.depth
    case .list(let list): list.depth
    case .dict(let dict): dict.depth
    case .call(let call): call.depth
    default: 0
    }
  }

  /// A short name of the value's kind, for messages.
  var kind: String {
    switch self {
    case .none: "None"
    case .bool: "a bool"
    case .int, .bigInt: "an int"
    case .float: "a float"
    case .string: "a str"
    case .bytes: "bytes"
    case .tuple: "a tuple"
    case .list: "a list"
    case .dict(let dict): dict.ordered ? "an OrderedDict" : "a dict"
    case .global(let global): "the global \(global)"
    case .call(let call): "a call of \(call.functionName)"
    case .persistentID: "a persistent id"
    }
  }

  /// The string, or `nil`. ASCII `bytes` (Python 2's `str`, SHORT_BINSTRING) count as strings,
  /// as torch decodes them.
  var string: String? {
    switch self {
    case .string(let text): text
    case .bytes(let bytes) where bytes.allSatisfy({ $0 < 0x80 }): String(decoding: bytes, as: UTF8.self)
    default: nil
    }
  }

  /// The items of a tuple or list, or `nil`.
  var sequence: [PickleValue]? {
    switch self {
    case .tuple(let tuple): tuple.items
    case .list(let list): list.items
    default: nil
    }
  }

  /// The global, or `nil`.
  var global: PickleGlobal? {
    if case .global(let global) = self { return global }
    return nil
  }

  /// Whether the value is the global `module.name`.
  func isGlobal(_ module: String, _ name: String) -> Bool {
    global.map { $0.module == module && $0.name == name } ?? false
  }
}

/// A global's dotted name.
struct PickleGlobal: Equatable, CustomStringConvertible {
  var module: String
  var name: String

  var description: String { "\(module).\(name)" }
}

/// An immutable tuple.
final class PickleTuple {
  let items: [PickleValue]
  let depth: Int

  init(_ items: [PickleValue]) {
    self.items = items
    self.depth = 1 + (items.lazy.map(\.depth).max() ?? 0)
  }
}

/// A list, mutable until frozen.
final class PickleList {
  var items: [PickleValue] = []
  var depth = 1
  var frozen = false
}

/// A dict with string keys, in insertion order, mutable until frozen. Keys are compared by their
/// UTF-8 bytes, as Python compares them (two spellings of `café` are two keys).
final class PickleDict {
  /// Whether it came from `collections.OrderedDict()`.
  let ordered: Bool
  private(set) var keys: [String] = []
  private(set) var values: [PickleValue] = []
  private var positions: [ExactName: Int] = [:]
  var depth = 1
  var frozen = false

  init(ordered: Bool) {
    self.ordered = ordered
  }

  var count: Int { keys.count }

  /// Sets `key` to `value`; a key already present keeps its place, as in Python.
  func set(_ key: String, _ value: PickleValue) {
    depth = max(depth, 1 + value.depth)
    if let position = positions[ExactName(key)] {
      values[position] = value
    } else {
      positions[ExactName(key)] = keys.count
      keys.append(key)
      values.append(value)
    }
  }

  subscript(key: String) -> PickleValue? {
    positions[ExactName(key)].map { values[$0] }
  }

  /// The members in order.
  var members: Zip2Sequence<[String], [PickleValue]> { zip(keys, values) }
}

/// A call that REDUCE (`function(*arguments)`) or NEWOBJ (`cls.__new__(cls, *arguments)`)
/// describes, with the state a BUILD gave it. Never made.
final class PickleCall {
  enum Kind {
    case reduce
    case newObject
  }

  let function: PickleValue
  let arguments: [PickleValue]
  let kind: Kind
  /// Where the REDUCE or NEWOBJ is (absolute file offset).
  let offset: Int
  private(set) var state: PickleValue?
  private(set) var depth: Int
  var frozen = false

  init(function: PickleValue, arguments: [PickleValue], kind: Kind, offset: Int) {
    self.function = function
    self.arguments = arguments
    self.kind = kind
    self.offset = offset
    self.depth = 1 + max(function.depth, arguments.lazy.map(\.depth).max() ?? 0)
  }

  /// The BUILD state; set once.
  func build(_ state: PickleValue) {
    self.state = state
    depth = max(depth, 1 + state.depth)
  }

  /// The function's dotted name, or what it is.
  var functionName: String {
    function.global.map(\.description) ?? function.kind
  }
}
