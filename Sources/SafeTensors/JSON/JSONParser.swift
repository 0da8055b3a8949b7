/// A strict JSON parser for headers, indexes and metadata read from untrusted files.
///
/// It accepts exactly RFC 8259 JSON in UTF-8 and refuses, with the byte offset, what a lenient
/// parser would let through: duplicate object keys, nesting deeper than ``maximumDepth``,
/// invalid UTF-8, unpaired surrogate escapes, control characters in strings, and anything but
/// whitespace after the value. It allocates in proportion to its input only.
public struct JSONParser: ~Copyable {
  /// Why a text is not acceptable JSON.
  public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
      case encoding, syntax, depth, duplicateKey
    }
    public var kind: Kind
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset)" }
  }

  /// The deepest nesting of arrays and objects accepted (serde_json's default limit).
  public static let maximumDepth = 128

  /// Parses `bytes` as one JSON value.
  ///
  /// - Throws: ``Failure`` naming the first problem and where it is.
  public static func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> JSONValue {
    // Read as bytes without binding the caller's memory to UInt8 for good.
    try bytes.withMemoryRebound(to: UInt8.self) { input throws(Failure) in try parse(input) }
  }

  private static func parse(_ input: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSONValue {
    try document(input) { parser throws(Failure) in try parser.parseValue(depth: 0) }
  }

  /// Reads `input` as one JSON text, as ``parse(_:)-(UnsafeRawBufferPointer)`` does (valid
  /// UTF-8 first, then one value and nothing after it but whitespace): `value` reads the value,
  /// the parser at its first byte, and its result is returned. The scans that read a header or
  /// an index straight from the bytes share this frame with the parser.
  static func document<Value>(
    _ input: UnsafeBufferPointer<UInt8>, _ value: (inout JSONParser) throws(Failure) -> Value
  ) throws(Failure) -> Value {
    if let bad = firstInvalidUTF8(input) {
      throw Failure(kind: .encoding, message: "invalid UTF-8", offset: bad)
    }
    var parser = JSONParser(input: input)
    parser.skipWhitespace()
    let result = try value(&parser)
    parser.skipWhitespace()
    if parser.position != input.count { throw parser.failure("unexpected text after the JSON value") }
    return result
  }

  /// Parses the UTF-8 bytes of `bytes`.
  public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
    try bytes.withUnsafeBytes { buffer in Result { () throws(Failure) in try parse(buffer) } }.get()
  }

  /// Parses a string.
  public static func parse(_ text: String) throws(Failure) -> JSONValue {
    try parse(Array(text.utf8))
  }

  let input: UnsafeBufferPointer<UInt8>
  var position = 0

  init(input: UnsafeBufferPointer<UInt8>) {
    self.input = input
  }

  func failure(_ message: String, kind: Failure.Kind = .syntax) -> Failure {
    Failure(kind: kind, message: message, offset: position)
  }

  var current: UInt8? { position < input.count ? input[position] : nil }

  mutating func skipWhitespace() {
    while position < input.count {
      switch input[position] {
      case 0x20, 0x09, 0x0A, 0x0D: position += 1
      default: return
      }
    }
  }

  private mutating func expect(_ byte: UInt8) throws(Failure) {
    guard current == byte else {
      throw failure("expected '\(Character(Unicode.Scalar(byte)))'")
    }
    position += 1
  }

  mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
    guard let byte = current else { throw failure("unexpected end of input") }
    switch byte {
    case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
    case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"):
      try parseLiteral("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try parseLiteral("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try parseLiteral("null")
      return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
    default: throw failure("unexpected character")
    }
  }

  private mutating func parseLiteral(_ word: StaticString) throws(Failure) {
    let count = word.utf8CodeUnitCount
    let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
    guard input.count - position >= count, (0..<count).allSatisfy({ input[position + $0] == expected[$0] })
    else { throw failure("invalid literal") }
    position += count
  }

  private mutating func parseObject(depth: Int) throws(Failure) -> JSONValue {
    if depth > Self.maximumDepth { throw failure("nesting deeper than \(Self.maximumDepth)", kind: .depth) }
    position += 1
    var members: [JSONMember] = []
    var keys = Set<ExactName>()
    skipWhitespace()
    if current == UInt8(ascii: "}") {
      position += 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard current == UInt8(ascii: "\"") else { throw failure("expected a string key") }
      let keyOffset = position
      let key = try parseString()
      // Keys compare by bytes (``ExactName``). Most objects have a few keys, which a scan checks
      // without building a set; a set takes over past 8.
      let repeated: Bool
      if members.count < 8 {
        repeated = members.contains { ExactName($0.key) == ExactName(key) }
      } else {
        if keys.isEmpty { keys = Set(members.map { ExactName($0.key) }) }
        repeated = !keys.insert(ExactName(key)).inserted
      }
      guard !repeated else {
        throw Failure(kind: .duplicateKey, message: "duplicate key \"\(key)\"", offset: keyOffset)
      }
      skipWhitespace()
      try expect(UInt8(ascii: ":"))
      skipWhitespace()
      members.append(JSONMember(key, try parseValue(depth: depth)))
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "}"):
        position += 1
        return .object(members)
      default: throw failure("expected ',' or '}'")
      }
    }
  }

  private mutating func parseArray(depth: Int) throws(Failure) -> JSONValue {
    if depth > Self.maximumDepth { throw failure("nesting deeper than \(Self.maximumDepth)", kind: .depth) }
    position += 1
    var elements: [JSONValue] = []
    skipWhitespace()
    if current == UInt8(ascii: "]") {
      position += 1
      return .array(elements)
    }
    while true {
      skipWhitespace()
      elements.append(try parseValue(depth: depth))
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "]"):
        position += 1
        return .array(elements)
      default: throw failure("expected ',' or ']'")
      }
    }
  }

  private mutating func parseNumber() throws(Failure) -> String {
    let start = position
    if current == UInt8(ascii: "-") { position += 1 }
    guard let first = current, isDigit(first) else { throw failure("invalid number") }
    position += 1
    if first != UInt8(ascii: "0") { skipDigits() }
    if current == UInt8(ascii: ".") {
      position += 1
      guard let digit = current, isDigit(digit) else { throw failure("invalid number") }
      skipDigits()
    }
    if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
      position += 1
      if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
      guard let digit = current, isDigit(digit) else { throw failure("invalid number") }
      skipDigits()
    }
    return String(decoding: UnsafeBufferPointer(rebasing: input[start..<position]), as: UTF8.self)
  }

  func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

  private mutating func skipDigits() {
    while let byte = current, isDigit(byte) { position += 1 }
  }

  mutating func parseString() throws(Failure) -> String {
    position += 1
    let start = position
    // Fast path: no escapes. The whole input is valid UTF-8 and '"' is ASCII, so the bytes
    // between the quotes are valid UTF-8 too.
    while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
      if byte < 0x20 { throw failure("control character in string") }
      position += 1
    }
    guard let stop = current else { throw failure("unterminated string") }
    if stop == UInt8(ascii: "\"") {
      position += 1
      return String(decoding: UnsafeBufferPointer(rebasing: input[start..<position - 1]), as: UTF8.self)
    }
    var bytes = Array(input[start..<position])
    while true {
      guard let byte = current else { throw failure("unterminated string") }
      position += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: bytes, as: UTF8.self)
      case UInt8(ascii: "\\"):
        try appendEscape(to: &bytes)
      case 0..<0x20:
        position -= 1
        throw failure("control character in string")
      default:
        bytes.append(byte)
      }
    }
  }

  private mutating func appendEscape(to bytes: inout [UInt8]) throws(Failure) {
    guard let byte = current else { throw failure("unterminated escape") }
    position += 1
    switch byte {
    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(byte)
    case UInt8(ascii: "b"): bytes.append(0x08)
    case UInt8(ascii: "f"): bytes.append(0x0C)
    case UInt8(ascii: "n"): bytes.append(0x0A)
    case UInt8(ascii: "r"): bytes.append(0x0D)
    case UInt8(ascii: "t"): bytes.append(0x09)
    case UInt8(ascii: "u"):
      var scalar = try parseHex4()
      if (0xD800..<0xDC00).contains(scalar) {
        guard current == UInt8(ascii: "\\"), position + 1 < input.count, input[position + 1] == UInt8(ascii: "u")
        else { throw failure("unpaired surrogate escape") }
        position += 2
        let low = try parseHex4()
        guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate escape") }
        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
      } else if (0xDC00..<0xE000).contains(scalar) {
        throw failure("unpaired surrogate escape")
      }
      bytes.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
    default:
      position -= 1
      throw failure("invalid escape")
    }
  }

  private mutating func parseHex4() throws(Failure) -> UInt32 {
    guard input.count - position >= 4 else { throw failure("invalid \\u escape") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = input[position]
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw failure("invalid \\u escape")
      }
      value = value << 4 | UInt32(digit)
      position += 1
    }
    return value
  }
}

/// The offset of the first byte that is not part of a valid UTF-8 sequence, or `nil`.
///
/// Refuses what Rust's `str::from_utf8` refuses: overlong forms, surrogates, code points past
/// U+10FFFF and truncated sequences.
func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
  var index = 0
  let count = bytes.count
  while index < count {
    // Runs of ASCII, 32 bytes at a time.
    while count - index >= 32 {
      let raw = UnsafeRawPointer(bytes.baseAddress! + index)
      let word =
        raw.loadUnaligned(as: UInt64.self) | raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        | raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        | raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
      guard word & 0x8080_8080_8080_8080 == 0 else { break }
      index += 32
    }
    guard index < count else { break }
    let lead = bytes[index]
    if lead < 0x80 {
      index += 1
      continue
    }
    let length: Int
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: length = 2
    case 0xE0:
      length = 3
      low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED:
      length = 3
      high = 0x9F
    case 0xF0:
      length = 4
      low = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4:
      length = 4
      high = 0x8F
    default: return index
    }
    guard count - index >= length else { return index }
    let second = bytes[index + 1]
    guard second >= low && second <= high else { return index }
    for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 {
      return index
    }
    index += length
  }
  return nil
}
