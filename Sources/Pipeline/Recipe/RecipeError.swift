/// An error about a conversion recipe: a recipe that cannot be found or read, a YAML document
/// that breaks the recipe schema, a byte size that does not parse, or a tensor that torchao
/// refuses to quantize the way the recipe asks.
///
/// Every message says what is allowed; ``description`` puts the file, line, key path and tensor
/// in front of it, leaving out what is not known.
public struct RecipeError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// No recipe file at that path, or no built-in recipe of that name.
    case notFound = "not-found"
    /// The recipe file exists but could not be read, or is not UTF-8.
    case io = "io"
    /// The text is not YAML.
    case syntax = "syntax"
    /// A mapping has a key the schema does not define there.
    case unknownKey = "unknown-key"
    /// A required key is missing.
    case missingKey = "missing-key"
    /// A value has the wrong YAML type (a list where a string belongs, a quoted number, ...).
    case wrongType = "wrong-type"
    /// A value has the right type but is not one the schema allows (an unknown scheme, a bad
    /// regex, a group size torchao does not offer, a malformed byte size, ...).
    case invalidValue = "invalid-value"
    /// torchao refuses to quantize a tensor with the config the recipe selects for it.
    case refused = "refused"
  }

  /// The rule that was broken.
  public var code: Code
  /// What is wrong and what is allowed.
  public var message: String
  /// The recipe file (or built-in recipe source) the error is about, if any.
  public var file: String?
  /// The 1-based line in ``file`` of the offending value, if known.
  public var line: Int?
  /// The key path of the offending value in the recipe, e.g. `rules[1].quantize.scheme`.
  public var keyPath: String?
  /// The tensor the error is about, for selection errors.
  public var tensor: String?

  /// Creates an error; `message` should say what is wrong and what is allowed.
  public init(
    _ code: Code, _ message: String, file: String? = nil, line: Int? = nil, keyPath: String? = nil,
    tensor: String? = nil
  ) {
    self.code = code
    self.message = message
    self.file = file
    self.line = line
    self.keyPath = keyPath
    self.tensor = tensor
  }

  /// `FILE:LINE: KEYPATH: tensor 'NAME': MESSAGE`, leaving out what is not known.
  public var description: String {
    var text = ""
    if let file { text += line.map { "\(file):\($0): " } ?? "\(file): " }
    if let keyPath { text += "\(keyPath): " }
    if let tensor { text += "tensor '\(tensor)': " }
    return text + message
  }
}
