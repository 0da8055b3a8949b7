/// A parsed JSON value that keeps object members in the order they were written.
///
/// Numbers keep their source text so that integers of any size survive exactly; ``uint64``
/// reads one as a non-negative integer. Equality is JSON equality: objects compare as
/// unordered maps, numbers by value (integers exactly, at any size).
public enum JSONValue: Sendable, Hashable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object([JSONMember])

  /// The members of an object, or `nil`.
  public var members: [JSONMember]? {
    if case .object(let members) = self { return members }
    return nil
  }

  /// The string, or `nil`.
  public var string: String? {
    if case .string(let text) = self { return text }
    return nil
  }

  /// The elements of an array, or `nil`.
  public var array: [JSONValue]? {
    if case .array(let elements) = self { return elements }
    return nil
  }

  /// The value of a number written as a plain non-negative integer that fits in 64 bits.
  ///
  /// `nil` for anything else, including `-0`, `1.0` and `1e3`.
  public var uint64: UInt64? {
    guard case .number(let text) = self, !text.isEmpty,
      text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    else { return nil }
    return UInt64(text)
  }

  /// The same value with every object's members sorted by key in code-point order, as Python's
  /// `json.dumps(sort_keys=True)` writes them.
  public func sortingKeys() -> JSONValue {
    switch self {
    case .object(let members):
      .object(members.map { JSONMember($0.key, $0.value.sortingKeys()) }.sorted { utf8Less($0.key, $1.key) })
    case .array(let elements): .array(elements.map { $0.sortingKeys() })
    default: self
    }
  }

  /// The member named `key` of an object, or `nil`.
  public subscript(key: String) -> JSONValue? {
    members?.first { $0.key == key }?.value
  }

  public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.number(let a), .number(let b)): return numbersEqual(a, b)
    case (.string(let a), .string(let b)): return a == b
    case (.array(let a), .array(let b)): return a == b
    case (.object(let a), .object(let b)):
      guard a.count == b.count else { return false }
      let right = Dictionary(b.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
      return a.allSatisfy { right[$0.key] == $0.value }
    default: return false
    }
  }

  /// JSON number equality: two integers exactly, whatever their size (`-0` is `0`); otherwise by
  /// value as `Double`s, so that `1.0` equals `1` and `1e2` equals `100`.
  private static func numbersEqual(_ a: String, _ b: String) -> Bool {
    if a == b { return true }
    if let x = integer(a), let y = integer(b) { return x.negative == y.negative && x.digits == y.digits }
    guard let x = Double(a), let y = Double(b) else { return false }
    return x == y
  }

  /// The sign and significant digits of a number written as an integer (no fraction, no
  /// exponent), or `nil`.
  private static func integer(_ text: String) -> (negative: Bool, digits: Substring)? {
    let negative = text.hasPrefix("-")
    let digits = text.dropFirst(negative ? 1 : 0)
    guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
      return nil
    }
    let significant = digits.drop { $0 == "0" }
    return (negative && !significant.isEmpty, significant)
  }

  public func hash(into hasher: inout Hasher) {
    // Coarse on purpose: equal values must hash alike, and equality ignores member order and
    // number spelling.
    switch self {
    case .null: hasher.combine(0)
    case .bool(let value): hasher.combine(value)
    case .number: hasher.combine(2)
    case .string(let text): hasher.combine(text)
    case .array(let elements): hasher.combine(elements.count)
    case .object(let members): hasher.combine(members.count)
    }
  }
}

/// One `"key": value` member of a JSON object.
public struct JSONMember: Sendable, Hashable {
  public var key: String
  public var value: JSONValue

  public init(_ key: String, _ value: JSONValue) {
    self.key = key
    self.value = value
  }
}
