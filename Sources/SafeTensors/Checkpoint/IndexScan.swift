import Foundation

/// The members of a `model.safetensors.index.json` read straight from its bytes, without a
/// ``JSONValue`` tree for `weight_map`.
///
/// The `weight_map` of a 300,000-tensor checkpoint is most of the file. The scan reads it into
/// (tensor, shard) pairs, a shard name written with the same bytes as the one before sharing that
/// one's string; every other member is parsed by ``JSONParser``. It refuses exactly the texts
/// ``JSONParser/parse(_:)-(UnsafeRawBufferPointer)`` refuses, with the same failure: it reads as
/// the parser reads, at the same depths, and checks the same duplicate keys.
struct IndexScan {
  /// The members of the root object other than `weight_map`, in the order written.
  var members: [JSONMember] = []
  /// `weight_map`'s members, in the order written, when it is an object: each tensor name with
  /// its shard name, or `nil` when the value is not a string.
  var weightMap: [(tensor: String, file: String?)]?

  /// Scans `input`, or returns `nil` when it is one valid JSON value that is not an object.
  ///
  /// - Throws: ``JSONParser/Failure`` as ``JSONParser`` would.
  static func scan(_ input: UnsafeBufferPointer<UInt8>) throws(JSONParser.Failure) -> IndexScan? {
    try JSONParser.document(input) { parser throws(JSONParser.Failure) -> IndexScan? in
      guard parser.current == UInt8(ascii: "{") else {
        _ = try parser.parseValue(depth: 0)
        return nil
      }
      var scan = IndexScan()
      try scan.readRoot(&parser)
      return scan
    }
  }

  /// Reads the root object, the parser at its `{`, as ``JSONParser`` reads an object at depth 1.
  private mutating func readRoot(_ parser: inout JSONParser) throws(JSONParser.Failure) {
    parser.position += 1
    parser.skipWhitespace()
    if parser.current == UInt8(ascii: "}") {
      parser.position += 1
      return
    }
    var keys: [String] = []
    while true {
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: "\"") else { throw parser.failure("expected a string key") }
      let keyOffset = parser.position
      let key = try parser.parseString()
      guard !keys.contains(where: { ExactName($0) == ExactName(key) }) else {
        throw JSONParser.Failure(kind: .duplicateKey, message: "duplicate key \"\(key)\"", offset: keyOffset)
      }
      keys.append(key)
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ":") else { throw parser.failure("expected ':'") }
      parser.position += 1
      parser.skipWhitespace()
      if key == "weight_map", parser.current == UInt8(ascii: "{") {
        weightMap = try Self.readWeightMap(&parser)
      } else {
        members.append(JSONMember(key, try parser.parseValue(depth: 1)))
      }
      parser.skipWhitespace()
      switch parser.current {
      case UInt8(ascii: ","): parser.position += 1
      case UInt8(ascii: "}"):
        parser.position += 1
        return
      default: throw parser.failure("expected ',' or '}'")
      }
    }
  }

  /// Reads the `weight_map` object, the parser at its `{`, as ``JSONParser`` reads an object at
  /// depth 2.
  private static func readWeightMap(_ parser: inout JSONParser) throws(JSONParser.Failure)
    -> [(tensor: String, file: String?)]
  {
    parser.position += 1
    var entries: [(tensor: String, file: String?)] = []
    var keys = Set<ExactName>()
    var last: (bytes: Range<Int>, text: String)?
    var firstKeyOffset = 0
    parser.skipWhitespace()
    if parser.current == UInt8(ascii: "}") {
      parser.position += 1
      return entries
    }
    while true {
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: "\"") else { throw parser.failure("expected a string key") }
      let keyOffset = parser.position
      let key = try parser.parseString()
      if entries.isEmpty {
        firstKeyOffset = keyOffset
      } else if entries.count == 1 {
        // Entries are about as long as the first (a key and a shard name): room for all of them,
        // without growing the set 20 times. Real entries take 40 bytes and more; the reservation
        // assumes no less than 32, so a file of tiny entries cannot reserve much more than its
        // own size (the set grows past that as it must).
        let remaining = parser.input.count - keyOffset
        let estimate = remaining / (keyOffset - firstKeyOffset) * 9 / 8 + 16
        keys.reserveCapacity(min(estimate, remaining / 32))
      }
      guard keys.insert(ExactName(key)).inserted else {
        throw JSONParser.Failure(kind: .duplicateKey, message: "duplicate key \"\(key)\"", offset: keyOffset)
      }
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ":") else { throw parser.failure("expected ':'") }
      parser.position += 1
      parser.skipWhitespace()
      let valueStart = parser.position
      if parser.current != UInt8(ascii: "\"") {
        _ = try parser.parseValue(depth: 2)
        entries.append((key, nil))
      } else if let last, parser.input.count - valueStart >= last.bytes.count,
        memcmp(
          parser.input.baseAddress! + last.bytes.lowerBound, parser.input.baseAddress! + valueStart, last.bytes.count)
          == 0
      {
        // The same bytes, quotes included, as the shard name before: the same string, ending
        // where that one ended.
        parser.position += last.bytes.count
        entries.append((key, last.text))
      } else {
        let text = try parser.parseString()
        last = (valueStart..<parser.position, text)
        entries.append((key, text))
      }
      parser.skipWhitespace()
      switch parser.current {
      case UInt8(ascii: ","): parser.position += 1
      case UInt8(ascii: "}"):
        parser.position += 1
        return entries
      default: throw parser.failure("expected ',' or '}'")
      }
    }
  }
}
