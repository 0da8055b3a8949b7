import Yams

/// One value of a recipe document with its key path, for schema checks whose errors say where
/// the value is.
struct RecipeNode {
  /// The YAML value.
  let node: Node
  /// Where it is: `quantize.granularity`, `rules[1].match`; empty for the document root.
  let path: String
  /// The recipe file, for errors.
  let file: String

  /// The value of `key` in this mapping, with its key path.
  func child(_ key: String, _ node: Node) -> RecipeNode {
    RecipeNode(node: node, path: path.isEmpty ? key : "\(path).\(key)", file: file)
  }

  /// An error about this value.
  func error(_ code: RecipeError.Code, _ message: String) -> RecipeError {
    RecipeError(code, message, file: file, line: node.mark?.line, keyPath: path.isEmpty ? nil : path)
  }

  /// The value's resolved YAML tag: `.str`, `.int`, `.bool`, ...
  private var tagName: Tag.Name { Tag.Name(rawValue: node.tag.rawValue) }

  /// What this value is, in words, for "expected X, found Y" messages.
  private var kind: String {
    switch node {
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    case .scalar:
      switch tagName {
      case .str: "the string '\(node.string ?? "")'"
      case .null: "null"
      case .bool: "the boolean \(node.string ?? "")"
      case .int: "the integer \(node.string ?? "")"
      case .float: "the number \(node.string ?? "")"
      default: "'\(node.string ?? "")' (\(node.tag.rawValue))"
      }
    }
  }

  private func wrongType(_ expected: String) -> RecipeError {
    error(.wrongType, "expected \(expected), found \(kind)")
  }

  /// The members of this mapping, by key, after checking every key is one of `allowed`.
  ///
  /// - Throws: `wrongType` if this is not a mapping or a key is not a string; `unknownKey`
  ///   naming the key and listing the allowed ones.
  func mapping(allowed: [String], what: String) throws(RecipeError) -> [String: RecipeNode] {
    guard let mapping = node.mapping else { throw wrongType("a mapping (\(what))") }
    var members: [String: RecipeNode] = [:]
    for (keyNode, value) in mapping {
      guard Tag.Name(rawValue: keyNode.tag.rawValue) == .str, let key = keyNode.string else {
        throw RecipeNode(node: keyNode, path: path, file: file).wrongType("string keys")
      }
      let member = child(key, value)
      guard allowed.contains(key) else {
        throw RecipeNode(node: keyNode, path: member.path, file: file).error(
          .unknownKey, "unknown key; \(what) allows \(allowed.joined(separator: ", "))")
      }
      members[key] = member
    }
    return members
  }

  /// The value of `key` in this mapping, or `nil` if it has none.
  ///
  /// - Throws: `wrongType` if this is not a mapping (`what` says what it should describe).
  func member(_ key: String, of what: String) throws(RecipeError) -> RecipeNode? {
    guard let mapping = node.mapping else { throw wrongType("a mapping (\(what))") }
    return mapping[key].map { child(key, $0) }
  }

  /// The elements of this list; `expected` describes it for the error (`a list of rules`).
  func sequence(expected: String) throws(RecipeError) -> [RecipeNode] {
    guard case .sequence(let sequence) = node else { throw wrongType(expected) }
    return sequence.enumerated().map { RecipeNode(node: $1, path: "\(path)[\($0)]", file: file) }
  }

  /// This string.
  func string() throws(RecipeError) -> String {
    guard tagName == .str, let text = node.string else { throw wrongType("a string") }
    return text
  }

  /// This integer.
  func integer() throws(RecipeError) -> Int {
    guard tagName == .int, let value = node.int else { throw wrongType("an integer") }
    return value
  }

  /// This boolean.
  func boolean() throws(RecipeError) -> Bool {
    guard tagName == .bool, let value = node.bool else { throw wrongType("true or false") }
    return value
  }

  /// One of `choices`, by name.
  func choice<Value>(_ choices: KeyValuePairs<String, Value>) throws(RecipeError) -> Value {
    let names = choices.map(\.key).joined(separator: ", ")
    guard tagName == .str, let text = node.string else { throw wrongType("one of \(names)") }
    guard let value = choices.first(where: { $0.key == text })?.value else {
      throw error(.invalidValue, "'\(text)' is not one of \(names)")
    }
    return value
  }

  /// A byte count written as an integer or as a size with a unit (``ByteSize``), at least 1.
  func byteCount() throws(RecipeError) -> Int {
    let bytes: Int
    switch tagName {
    case .int: bytes = try integer()
    case .str:
      do {
        bytes = try ByteSize(try string()).bytes
      } catch {
        throw self.error(.invalidValue, error.message)
      }
    default: throw wrongType("a size such as 5GB or 512MiB")
    }
    guard bytes > 0 else { throw error(.invalidValue, "the size must be at least 1 byte") }
    return bytes
  }
}
