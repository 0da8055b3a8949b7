/// A pattern that selects tensors by their full name, as a recipe rule's `match` writes it.
///
/// `re:REGEX` is a regular expression that must match the whole name (Python's `re.fullmatch`,
/// as torchao's `FqnToConfig` uses it), in Swift `Regex` syntax, which covers the usual Python
/// `re` syntax. Anything else is a glob on the whole name: `*` matches any run of characters,
/// dots included, `?` matches one character, and every other character matches itself.
///
/// Two patterns are equal when they are written the same.
public struct TensorPattern: Sendable, Hashable, CustomStringConvertible {
  private enum Matcher: Sendable {
    case glob([Character])
    case regex(SharedRegex)
  }

  /// A compiled regex shared read-only between tasks. `Regex` is not `Sendable` (its output type
  /// need not be), but matching only reads it, and the regex engine publishes its lazily compiled
  /// program with an atomic compare-and-swap, so concurrent matching is safe.
  private struct SharedRegex: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
  }

  /// The pattern as written, `re:` prefix included.
  public let text: String
  private let matcher: Matcher

  /// Compiles a pattern.
  ///
  /// - Throws: `invalidValue` for an empty pattern or a regex that does not compile, with the
  ///   compiler's reason.
  public init(_ text: String) throws(RecipeError) {
    self.text = text
    if text.hasPrefix("re:") {
      let source = String(text.dropFirst(3))
      guard !source.isEmpty else { throw RecipeError(.invalidValue, "the regex after 're:' is empty") }
      do {
        matcher = .regex(SharedRegex(regex: try Regex(source)))
      } catch {
        throw RecipeError(.invalidValue, "invalid regex '\(source)': \(error)")
      }
    } else {
      guard !text.isEmpty else {
        throw RecipeError(.invalidValue, "the pattern is empty; write a glob such as '*.mlp.*' or a regex 're:...'")
      }
      matcher = .glob(Array(text))
    }
  }

  /// Whether the pattern matches all of `name`.
  public func matches(_ name: String) -> Bool {
    switch matcher {
    case .regex(let shared): (try? shared.regex.wholeMatch(in: name)) != nil
    case .glob(let pattern): Self.glob(pattern, matches: Array(name))
    }
  }

  /// The pattern as written.
  public var description: String { text }

  /// Whether the pattern names one tensor or module exactly: a glob with no `*` or `?`.
  public var isExactName: Bool {
    if case .glob(let pattern) = matcher { return !pattern.contains("*") && !pattern.contains("?") }
    return false
  }

  /// The pattern as a key of torchao's `FqnToConfig`: an exact name as it is, a regex as written
  /// (`re:…`), a glob as the equivalent regex.
  public var fqnKey: String {
    guard case .glob(let pattern) = matcher, !isExactName else { return text }
    var regex = "re:"
    for character in pattern {
      switch character {
      case "*": regex += ".*"
      case "?": regex += "."
      case "\\", ".", "+", "(", ")", "[", "]", "{", "}", "^", "$", "|": regex += "\\\(character)"
      default: regex.append(character)
      }
    }
    return regex
  }

  /// Compares patterns as written.
  public static func == (lhs: TensorPattern, rhs: TensorPattern) -> Bool { lhs.text == rhs.text }

  /// Hashes the pattern as written.
  public func hash(into hasher: inout Hasher) { hasher.combine(text) }

  /// Iterative glob match with one backtrack point (the last `*`): linear in practice, never
  /// exponential.
  private static func glob(_ pattern: [Character], matches name: [Character]) -> Bool {
    var p = 0
    var n = 0
    var star: (pattern: Int, name: Int)?
    while n < name.count {
      if p < pattern.count && (pattern[p] == "?" || pattern[p] == name[n]) {
        p += 1
        n += 1
      } else if p < pattern.count && pattern[p] == "*" {
        star = (p, n)
        p += 1
      } else if let last = star {
        p = last.pattern + 1
        n = last.name + 1
        star = (last.pattern, last.name + 1)
      } else {
        return false
      }
    }
    while p < pattern.count && pattern[p] == "*" { p += 1 }
    return p == pattern.count
  }
}
