/// A symbolic pickle machine: it reads one pickle and builds the ``PickleValue`` it describes,
/// without importing or calling anything.
///
/// It knows the opcodes a torch.save checkpoint needs (protocol 2, plus the harmless framing,
/// memo and string opcodes of protocol 4, which torch's own weights-only loader refuses but
/// Python writes when asked for protocol 4) and refuses every other one. GLOBAL checks the
/// allowlist (``PickleGlobals``); REDUCE and NEWOBJ build a ``PickleCall`` (except
/// `collections.OrderedDict()`, which builds an empty dict so that SETITEMS can fill it).
/// Every length is checked against the bytes left before anything is allocated; SETITEM(S) work
/// on dicts only and take string keys only, APPEND(S) on lists only; memo references must be
/// defined; nesting is limited to ``maximumDepth``.
struct PickleMachine {
  /// The deepest nesting of values accepted. torch checkpoints nest about 15 deep.
  static let maximumDepth = 100

  /// The most values one pickle may push (about 30 per tensor: 500 000 tensors), which bounds
  /// the memory a hostile pickle can make the machine hold to well under a gigabyte.
  static let maximumValues = 1 << 24

  private let bytes: [UInt8]
  private let base: Int
  private var position: Int
  private var stack: [PickleValue] = []
  private var marks: [Int] = []
  private var memo: [UInt32: PickleValue] = [:]
  private var persistentIDs: [PickleTuple] = []
  private var pushed = 0
  private let valueLimit: Int

  /// What a pickle describes.
  struct Result {
    /// The value STOP returned.
    var value: PickleValue
    /// The index in the bytes just past the STOP.
    var end: Int
    /// Every persistent id (storage) the pickle names, in order.
    var persistentIDs: [PickleTuple]
  }

  /// Runs the pickle that starts at `start` in `bytes`, whose byte 0 is at absolute file offset
  /// `base` (offsets in errors are absolute).
  ///
  /// - Throws: `opcode`, `global`, `malformedPickle`, `tooDeep` (also past `valueLimit` values
  ///   pushed or memoized) or `unsupportedTensor`, with the offset of the opcode.
  static func run(_ bytes: [UInt8], from start: Int = 0, base: Int = 0, valueLimit: Int = maximumValues)
    throws(PickleError) -> Result
  {
    var machine = PickleMachine(bytes: bytes, base: base, position: start, valueLimit: valueLimit)
    return try machine.run()
  }

  private init(bytes: [UInt8], base: Int, position: Int, valueLimit: Int) {
    self.bytes = bytes
    self.base = base
    self.position = position
    self.valueLimit = valueLimit
  }

  private mutating func run() throws(PickleError) -> Result {
    while true {
      let at = base + position
      do throws(PickleError) {
        let opcode = try byte()
        if let value = try step(opcode, at: at) {
          return Result(value: value, end: position, persistentIDs: persistentIDs)
        }
      } catch {
        var located = error
        if located.offset == nil { located.offset = at }
        throw located
      }
    }
  }

  /// Performs one opcode; returns the result at STOP.
  private mutating func step(_ opcode: UInt8, at: Int) throws(PickleError) -> PickleValue? {
    switch opcode {
    case 0x80:  // PROTO
      let version = try byte()
      guard version <= 5 else { throw malformed("pickle protocol \(version)") }
    case 0x95:  // FRAME: framing is advisory
      _ = try take(8)
    case 0x2E:  // STOP
      guard marks.isEmpty else { throw malformed("STOP with an open MARK") }
      guard stack.count == 1 else { throw malformed("STOP with \(stack.count) values on the stack instead of 1") }
      return stack[0]
    case 0x63:  // GLOBAL
      let module = try line()
      let name = try line()
      try push(global(module, name, at: at))
    case 0x93:  // STACK_GLOBAL
      let name = try pop()
      let module = try pop()
      guard case .string(let moduleText) = module, case .string(let nameText) = name else {
        throw malformed("STACK_GLOBAL needs two strings")
      }
      try push(global(moduleText, nameText, at: at))
    case 0x52:  // REDUCE
      let arguments = try pop()
      let function = try pop()
      guard case .tuple(let tuple) = arguments else { throw malformed("REDUCE arguments are \(arguments.kind)") }
      guard function.global != nil else { throw malformed("REDUCE calls \(function.kind), not a global") }
      if function.isGlobal("collections", "OrderedDict") && tuple.items.isEmpty {
        try push(.dict(PickleDict(ordered: true)))
      } else {
        try push(.call(PickleCall(function: function, arguments: freeze(tuple.items), kind: .reduce, offset: at)))
      }
    case 0x81:  // NEWOBJ
      let arguments = try pop()
      let type = try pop()
      guard case .tuple(let tuple) = arguments, type.global != nil else {
        throw malformed("NEWOBJ needs a global and a tuple, got \(type.kind) and \(arguments.kind)")
      }
      try push(.call(PickleCall(function: type, arguments: freeze(tuple.items), kind: .newObject, offset: at)))
    case 0x62:  // BUILD
      let state = try pop()
      let target = try top()
      switch target {
      case .call(let call):
        guard !call.frozen else { throw malformed("BUILD on a value already inside another") }
        guard call.state == nil else { throw malformed("BUILD twice on one object") }
        try checkDepth(1 + state.depth)
        call.build(freeze(state))
      case .dict(let dict) where dict.ordered:
        // `Module.state_dict()` attaches `_metadata` to its OrderedDict; it is not read.
        guard case .dict = state else { throw malformed("BUILD on an OrderedDict with \(state.kind)") }
        guard !dict.frozen else { throw malformed("BUILD on a value already inside another") }
      default:
        throw malformed("BUILD on \(target.kind)")
      }
    case 0x28:  // MARK
      guard marks.count < Self.maximumDepth else {
        throw PickleError(.tooDeep, "MARKs nest deeper than \(Self.maximumDepth)")
      }
      marks.append(stack.count)
    case 0x74:  // TUPLE
      try push(tuple(try popMark()))
    case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
      let count = Int(opcode - 0x84)
      guard stack.count - (marks.last ?? 0) >= count else { throw malformed("stack underflow") }
      let items = Array(stack.suffix(count))
      stack.removeLast(count)
      try push(tuple(items))
    case 0x29:  // EMPTY_TUPLE
      try push(.tuple(PickleTuple([])))
    case 0x7D:  // EMPTY_DICT
      try push(.dict(PickleDict(ordered: false)))
    case 0x5D:  // EMPTY_LIST
      try push(.list(PickleList()))
    case 0x73:  // SETITEM
      let value = try pop()
      let key = try pop()
      try setItems(in: try top(), [key, value])
    case 0x75:  // SETITEMS
      let items = try popMark()
      try setItems(in: try top(), items)
    case 0x61:  // APPEND
      let value = try pop()
      try append(to: try top(), [value])
    case 0x65:  // APPENDS
      let items = try popMark()
      try append(to: try top(), items)
    case 0x4E: try push(.none)  // NONE
    case 0x88: try push(.bool(true))  // NEWTRUE
    case 0x89: try push(.bool(false))  // NEWFALSE
    case 0x4B: try push(.int(Int64(try byte())))  // BININT1
    case 0x4D: try push(.int(Int64(try little(2))))  // BININT2
    case 0x4A: try push(.int(Int64(Int32(truncatingIfNeeded: try little(4)))))  // BININT
    case 0x8A:  // LONG1
      let count = Int(try byte())
      guard count <= 16 else { throw malformed("LONG1 of \(count) bytes") }
      try push(Self.integer(try take(count)))
    case 0x47:  // BINFLOAT, big-endian
      let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      try push(.float(Double(bitPattern: raw)))
    case 0x58:  // BINUNICODE
      try push(text(try take(Int(try little(4)))))
    case 0x8C:  // SHORT_BINUNICODE
      try push(text(try take(Int(try byte()))))
    case 0x8D:  // BINUNICODE8
      let count = try little(8)
      guard count <= UInt64(bytes.count - position) else { throw truncated(count) }
      try push(text(try take(Int(count))))
    case 0x55:  // SHORT_BINSTRING (Python 2 str)
      try push(.bytes(Array(try take(Int(try byte())))))
    case 0x51:  // BINPERSID
      let id = try pop()
      guard case .tuple(let tuple) = id, tuple.items.first?.string == "storage" else {
        throw malformed("persistent id is \(id.kind), not ('storage', ...)")
      }
      persistentIDs.append(tuple)
      try push(.persistentID(tuple))
    case 0x71:  // BINPUT
      try memoize(UInt32(try byte()))
    case 0x72:  // LONG_BINPUT
      try memoize(UInt32(try little(4)))
    case 0x94:  // MEMOIZE
      try memoize(UInt32(memo.count))
    case 0x68, 0x6A:  // BINGET, LONG_BINGET
      let index = opcode == 0x68 ? UInt32(try byte()) : UInt32(try little(4))
      guard let value = memo[index] else { throw malformed("memo entry \(index) is not defined") }
      try push(value)
    default:
      throw PickleError(.opcode, "opcode \(Self.describe(opcode)) is not allowed")
    }
    return nil
  }

  // MARK: - Operands

  private mutating func take(_ count: Int) throws(PickleError) -> ArraySlice<UInt8> {
    guard count <= bytes.count - position else { throw truncated(UInt64(count)) }
    defer { position += count }
    return bytes[position..<position + count]
  }

  private mutating func byte() throws(PickleError) -> UInt8 {
    try take(1).first!
  }

  private mutating func little(_ count: Int) throws(PickleError) -> UInt64 {
    try take(count).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
  }

  /// A GLOBAL operand: text up to a newline, at most 256 bytes.
  private mutating func line() throws(PickleError) -> String {
    let end = min(bytes.count, position + 257)
    guard let newline = bytes[position..<end].firstIndex(of: 0x0A) else {
      throw malformed(end == bytes.count ? "truncated GLOBAL" : "GLOBAL name longer than 256 bytes")
    }
    defer { position = newline + 1 }
    guard let text = String(validating: bytes[position..<newline], as: UTF8.self) else {
      throw malformed("GLOBAL name is not UTF-8")
    }
    return text
  }

  private func text(_ slice: ArraySlice<UInt8>) throws(PickleError) -> PickleValue {
    guard let text = String(validating: slice, as: UTF8.self) else { throw malformed("string is not UTF-8") }
    return .string(text)
  }

  /// The value of a little-endian two's-complement integer.
  static func integer(_ bytes: ArraySlice<UInt8>) -> PickleValue {
    guard let last = bytes.last else { return .int(0) }
    let fill: UInt8 = last & 0x80 != 0 ? 0xFF : 0
    let low = bytes.prefix(8)
    if bytes.dropFirst(8).allSatisfy({ $0 == fill }) {
      var value = low.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      if low.count < 8 && fill == 0xFF { value |= ~UInt64(0) << (8 * low.count) }
      let signed = Int64(bitPattern: value)
      // The sign of 8 bytes must agree with the sign of the whole number.
      if low.count < 8 || (signed < 0) == (fill == 0xFF) { return .int(signed) }
    }
    return .bigInt(Array(bytes))
  }

  // MARK: - Stack

  private mutating func push(_ value: PickleValue) throws(PickleError) {
    pushed += 1
    guard pushed <= valueLimit else {
      throw PickleError(.tooDeep, "the pickle pushes more than \(valueLimit) values")
    }
    try checkDepth(value.depth)
    stack.append(value)
  }

  private mutating func pop() throws(PickleError) -> PickleValue {
    guard stack.count > (marks.last ?? 0) else { throw malformed("stack underflow") }
    return stack.removeLast()
  }

  private func top() throws(PickleError) -> PickleValue {
    guard stack.count > (marks.last ?? 0), let value = stack.last else { throw malformed("stack underflow") }
    return value
  }

  private mutating func popMark() throws(PickleError) -> [PickleValue] {
    guard let mark = marks.popLast() else { throw malformed("no MARK to pop to") }
    let items = Array(stack[mark...])
    stack.removeSubrange(mark...)
    return items
  }

  /// Stores the top of the stack as memo entry `index`; the memo holds at most `valueLimit`
  /// entries.
  private mutating func memoize(_ index: UInt32) throws(PickleError) {
    guard memo.count < valueLimit || memo[index] != nil else {
      throw PickleError(.tooDeep, "the pickle memoizes more than \(valueLimit) values")
    }
    memo[index] = try top()
  }

  private func checkDepth(_ depth: Int) throws(PickleError) {
    guard depth <= Self.maximumDepth else {
      throw PickleError(.tooDeep, "values nest deeper than \(Self.maximumDepth)")
    }
  }

  // MARK: - Values

  private func global(_ module: String, _ name: String, at: Int) throws(PickleError) -> PickleValue {
    let global = PickleGlobal(module: module, name: name)
    try PickleGlobals.check(global, offset: at)
    return .global(global)
  }

  private func tuple(_ items: [PickleValue]) throws(PickleError) -> PickleValue {
    let tuple = PickleTuple(freeze(items))
    try checkDepth(tuple.depth)
    return .tuple(tuple)
  }

  /// Marks containers that go inside another value as frozen: they can no longer change, so no
  /// value can come to contain itself.
  @discardableResult
  private func freeze(_ items: [PickleValue]) -> [PickleValue] {
    for item in items { freeze(item) }
    return items
  }

  @discardableResult
  private func freeze(_ value: PickleValue) -> PickleValue {
    switch value {
    case .list(let list): list.frozen = true
    case .dict(let dict): dict.frozen = true
    case .call(let call): call.frozen = true
    default: break
    }
    return value
  }

  private func setItems(in target: PickleValue, _ items: [PickleValue]) throws(PickleError) {
    guard case .dict(let dict) = target else { throw malformed("SETITEM on \(target.kind), not a dict") }
    guard !dict.frozen else { throw malformed("SETITEM on a dict already inside another value") }
    guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of values") }
    for index in stride(from: 0, to: items.count, by: 2) {
      guard let key = items[index].string else {
        throw PickleError(.unexpectedObject, "dict key is \(items[index].kind); only string keys are read")
      }
      let value = items[index + 1]
      try refuseSelf(value, in: target)
      try checkDepth(1 + value.depth)
      dict.set(key, freeze(value))
    }
  }

  private func append(to target: PickleValue, _ items: [PickleValue]) throws(PickleError) {
    guard case .list(let list) = target else { throw malformed("APPEND on \(target.kind), not a list") }
    guard !list.frozen else { throw malformed("APPEND on a list already inside another value") }
    for value in items {
      try refuseSelf(value, in: target)
      try checkDepth(1 + value.depth)
      list.items.append(freeze(value))
      list.depth = max(list.depth, 1 + value.depth)
    }
  }

  private func refuseSelf(_ value: PickleValue, in target: PickleValue) throws(PickleError) {
    switch (value, target) {
    case (.dict(let a), .dict(let b)) where a === b: throw malformed("a dict put inside itself")
    case (.list(let a), .list(let b)) where a === b: throw malformed("a list put inside itself")
    default: break
    }
  }

  private func malformed(_ message: String) -> PickleError {
    PickleError(.malformedPickle, message)
  }

  private func truncated(_ count: UInt64) -> PickleError {
    PickleError(.malformedPickle, "truncated: \(count) bytes needed, \(bytes.count - position) left")
  }

  /// `0x69 'i' (INST)`: an opcode's byte, character and name.
  static func describe(_ opcode: UInt8) -> String {
    let hex = "0x" + String(opcode, radix: 16, uppercase: true).leftPadded(to: 2)
    let character = (0x21..<0x7F).contains(opcode) ? " '\(Character(Unicode.Scalar(opcode)))'" : ""
    let name = opcodeNames[opcode].map { " (\($0))" } ?? " (not a pickle opcode)"
    return hex + character + name
  }

  private static let opcodeNames: [UInt8: String] = [
    0x28: "MARK", 0x2E: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
    0x4A: "BININT", 0x4B: "BININT1", 0x4C: "LONG", 0x4D: "BININT2", 0x4E: "NONE", 0x50: "PERSID",
    0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
    0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT",
    0x7D: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6A: "LONG_BINGET",
    0x6C: "LIST", 0x5D: "EMPTY_LIST", 0x6F: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT",
    0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO",
    0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
    0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8A: "LONG1", 0x8B: "LONG4", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
    0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x8E: "BINBYTES8", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
    0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
    0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
  ]
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    String(repeating: "0", count: max(0, width - count)) + self
  }
}
