import Foundation

/// The members of a safetensors header read straight from its bytes, without a ``JSONValue`` tree
/// for the well-formed ones.
///
/// A header of 300,000 tensors, each shard of a torchao checkpoint repeating 100,000 descriptions
/// in `__metadata__`, spends most of its decoding in building and reading that tree. The scan
/// decodes an entry written the usual way (`{"dtype":…,"shape":[…],"data_offsets":[…]}`, any
/// key order and spacing, no escapes, integers of at most 18 digits) and a `__metadata__` object
/// of strings as it reads them; anything else (a bad entry, an odd spelling) is parsed by
/// ``JSONParser`` as before and left to the generic rules, so every file is refused with the rule,
/// message and byte offset it was refused with before. JSON errors (syntax, depth, duplicate keys)
/// still come first and in byte order: the scan reads the whole text before any entry is judged.
struct HeaderScan {
  /// One member of the header object, in the order written.
  enum Member {
    /// An entry that the scan decoded and that passes every rule of a single entry.
    case tensor(TensorInfo)
    /// Any other entry, to be decoded (and refused) by the generic rules.
    case entry(name: String, value: JSONValue)
    /// `__metadata__`, an object of strings.
    case metadata([String: String])
    /// Any other `__metadata__` value, to be judged by the generic rules.
    case otherMetadata(JSONValue)
  }

  /// The members, in the order written.
  var members: [Member] = []
  /// Each tensor's position among the members that are not `__metadata__`.
  var positions: [ExactName: Int] = [:]
  /// The integers of the list being read, in storage kept from list to list.
  private var integers: [Int] = []
  /// The shapes read most recently, also as `UInt64`s: a header's entries share a few shapes,
  /// which then share their storage instead of allocating arrays each.
  private var shapes: [(shape: [Int], wide: [UInt64])] = []

  /// The `__metadata__` text most recently decoded, and what it decoded to: the shards of a
  /// torchao checkpoint all carry the same one, which is then decoded once.
  final class MetadataCache {
    var bytes: [UInt8] = []
    var metadata: [String: String] = [:]

    init() {}
  }

  /// Scans `bytes`, or returns `nil` when they are one valid JSON value that is not an object.
  ///
  /// - Throws: ``JSONParser/Failure`` as ``JSONParser/parse(_:)-(UnsafeRawBufferPointer)`` would.
  static func scan(_ bytes: UnsafeRawBufferPointer, metadataCache: MetadataCache?) throws(JSONParser.Failure)
    -> HeaderScan?
  {
    try bytes.withMemoryRebound(to: UInt8.self) { input throws(JSONParser.Failure) in
      try scan(input, metadataCache: metadataCache)
    }
  }

  private static func scan(_ input: UnsafeBufferPointer<UInt8>, metadataCache: MetadataCache?)
    throws(JSONParser.Failure) -> HeaderScan?
  {
    try JSONParser.document(input) { parser throws(JSONParser.Failure) -> HeaderScan? in
      guard parser.current == UInt8(ascii: "{") else {
        _ = try parser.parseValue(depth: 0)
        return nil
      }
      var scan = HeaderScan()
      // An entry takes 60 bytes or more besides its name: room for every tensor, without growing.
      scan.positions.reserveCapacity(input.count / 64)
      try scan.readObject(&parser, metadataCache: metadataCache)
      return scan
    }
  }

  /// Reads the header object, the parser at its `{`, as ``JSONParser`` reads an object at depth 1.
  private mutating func readObject(_ parser: inout JSONParser, metadataCache: MetadataCache?)
    throws(JSONParser.Failure)
  {
    parser.position += 1
    parser.skipWhitespace()
    if parser.current == UInt8(ascii: "}") {
      parser.position += 1
      return
    }
    var hasMetadata = false
    while true {
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: "\"") else { throw parser.failure("expected a string key") }
      let keyOffset = parser.position
      let key = try parser.parseString()
      let isMetadata = key.utf8.elementsEqual("__metadata__".utf8)
      let repeated =
        isMetadata ? hasMetadata : positions.updateValue(positions.count, forKey: ExactName(key)) != nil
      guard !repeated else {
        throw JSONParser.Failure(kind: .duplicateKey, message: "duplicate key \"\(key)\"", offset: keyOffset)
      }
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ":") else { throw parser.failure("expected ':'") }
      parser.position += 1
      parser.skipWhitespace()
      let valueStart = parser.position
      if isMetadata {
        hasMetadata = true
        if let metadata = try Self.readMetadata(&parser, cache: metadataCache) {
          members.append(.metadata(metadata))
        } else {
          parser.position = valueStart
          members.append(.otherMetadata(try parser.parseValue(depth: 1)))
        }
      } else if let tensor = readEntry(&parser, name: key) {
        members.append(.tensor(tensor))
      } else {
        parser.position = valueStart
        members.append(.entry(name: key, value: try parser.parseValue(depth: 1)))
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

  /// Reads an object of strings, or returns `nil` (the parser anywhere) when the value is
  /// something else.
  ///
  /// - Throws: what ``JSONParser`` throws for the same bytes: a string's syntax, a duplicate key.
  private static func readMetadata(_ parser: inout JSONParser, cache: MetadataCache?) throws(JSONParser.Failure)
    -> [String: String]?
  {
    let start = parser.position
    guard parser.current == UInt8(ascii: "{") else { return nil }
    if let cache, !cache.bytes.isEmpty, parser.input.count - start >= cache.bytes.count,
      memcmp(cache.bytes, parser.input.baseAddress! + start, cache.bytes.count) == 0
    {
      parser.position += cache.bytes.count
      return cache.metadata
    }
    parser.position += 1
    var metadata: [String: String] = [:]
    var lastValue: (bytes: Range<Int>, text: String)?
    parser.skipWhitespace()
    if parser.current == UInt8(ascii: "}") {
      parser.position += 1
      return metadata
    }
    while true {
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: "\"") else { return nil }
      let keyOffset = parser.position
      let key = try parser.parseString()
      // A key whose bytes repeat is a duplicate, refused before its value is read, as the parser
      // refuses it; one that only reads the same (`String` equality is canonical equivalence)
      // replaces the value, as the generic rules do.
      if let index = metadata.index(forKey: key), ExactName(metadata[index].key) == ExactName(key) {
        throw JSONParser.Failure(kind: .duplicateKey, message: "duplicate key \"\(key)\"", offset: keyOffset)
      }
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ":") else { return nil }
      parser.position += 1
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: "\"") else { return nil }
      // torchao's entries repeat a few descriptions: a value written with the same bytes as the
      // one before (quotes included, so it ends where that one ended) is the same string.
      let valueStart = parser.position
      if let last = lastValue, parser.input.count - valueStart >= last.bytes.count,
        memcmp(
          parser.input.baseAddress! + last.bytes.lowerBound, parser.input.baseAddress! + valueStart, last.bytes.count)
          == 0
      {
        parser.position += last.bytes.count
        metadata[key] = last.text
      } else {
        let text = try parser.parseString()
        lastValue = (valueStart..<parser.position, text)
        metadata[key] = text
      }
      parser.skipWhitespace()
      switch parser.current {
      case UInt8(ascii: ","): parser.position += 1
      case UInt8(ascii: "}"):
        parser.position += 1
        if let cache {
          cache.bytes = Array(parser.input[start..<parser.position])
          cache.metadata = metadata
        }
        return metadata
      default: return nil
      }
    }
  }

  /// Reads an entry written the usual way that passes every rule of a single entry, or returns
  /// `nil` (the parser anywhere) for anything else.
  private mutating func readEntry(_ parser: inout JSONParser, name: String) -> TensorInfo? {
    guard parser.current == UInt8(ascii: "{") else { return nil }
    parser.position += 1
    var dtype: DType?
    var shape: (shape: [Int], wide: [UInt64])?
    var offsets: Range<Int>?
    repeat {
      parser.skipWhitespace()
      guard let key = Self.readPlainString(&parser) else { return nil }
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ":") else { return nil }
      parser.position += 1
      parser.skipWhitespace()
      if key.elementsEqual("dtype".utf8), dtype == nil {
        guard let text = Self.readPlainString(&parser),
          let type = DType(rawValue: String(decoding: text, as: UTF8.self))
        else { return nil }
        dtype = type
      } else if key.elementsEqual("shape".utf8), shape == nil {
        guard Self.readIntegers(&parser, into: &integers) else { return nil }
        if let known = shapes.first(where: { $0.shape == integers }) {
          shape = known
        } else {
          let copy = [Int](unsafeUninitializedCapacity: integers.count) { buffer, count in
            count = buffer.initialize(fromContentsOf: integers)
          }
          if shapes.count == 8 { shapes.removeFirst() }
          shapes.append((copy, copy.map { UInt64($0) }))
          shape = shapes.last
        }
      } else if key.elementsEqual("data_offsets".utf8), offsets == nil {
        guard Self.readIntegers(&parser, into: &integers), integers.count == 2, integers[0] <= integers[1] else {
          return nil
        }
        offsets = integers[0]..<integers[1]
      } else {
        return nil
      }
      parser.skipWhitespace()
      guard parser.current == UInt8(ascii: ",") || parser.current == UInt8(ascii: "}") else { return nil }
      parser.position += 1
    } while parser.input[parser.position - 1] == UInt8(ascii: ",")
    guard let dtype, let shape, let offsets,
      let bytes = try? dataByteCount(dtype, shape.wide, tensor: name),
      bytes == UInt64(offsets.count)
    else { return nil }
    return TensorInfo(name: name, dtype: dtype, shape: shape.shape, dataOffsets: offsets)
  }

  /// The bytes of a string without escapes, or `nil`.
  private static func readPlainString(_ parser: inout JSONParser) -> UnsafeBufferPointer<UInt8>? {
    guard parser.current == UInt8(ascii: "\"") else { return nil }
    let start = parser.position + 1
    var end = start
    while end < parser.input.count, parser.input[end] != UInt8(ascii: "\"") {
      guard parser.input[end] >= 0x20, parser.input[end] != UInt8(ascii: "\\") else { return nil }
      end += 1
    }
    guard end < parser.input.count else { return nil }
    parser.position = end + 1
    return UnsafeBufferPointer(rebasing: parser.input[start..<end])
  }

  /// Reads into `integers` a list of non-negative integers written without sign, fraction,
  /// exponent or leading zero, of at most 18 digits each (so under `Int.max`), or returns
  /// `false`.
  private static func readIntegers(_ parser: inout JSONParser, into integers: inout [Int]) -> Bool {
    integers.removeAll(keepingCapacity: true)
    guard parser.current == UInt8(ascii: "[") else { return false }
    parser.position += 1
    parser.skipWhitespace()
    if parser.current == UInt8(ascii: "]") {
      parser.position += 1
      return true
    }
    while true {
      parser.skipWhitespace()
      let start = parser.position
      var value = 0
      while let byte = parser.current, parser.isDigit(byte) {
        if parser.position - start == 18 { return false }
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
        parser.position += 1
      }
      let digits = parser.position - start
      guard digits > 0, digits == 1 || parser.input[start] != UInt8(ascii: "0") else { return false }
      integers.append(value)
      parser.skipWhitespace()
      switch parser.current {
      case UInt8(ascii: ","): parser.position += 1
      case UInt8(ascii: "]"):
        parser.position += 1
        return true
      default: return false
      }
    }
  }
}
