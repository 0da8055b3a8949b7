/// Finds YAML anchors (`&name`) and aliases (`*name`) in a recipe's text before it is parsed.
///
/// Recipes refuse both. A recipe never needs them, and aliases let a few hundred bytes stand for
/// billions of nodes: used as mapping keys (`{*i : 1, *h : 2}`), they make the YAML library's
/// duplicate-key check hash every expanded node, which runs for hours (adversarial 2.3).
///
/// The scan knows just enough YAML to skip what is not a token: quoted scalars (`'…'` with `''`,
/// `"…"` with backslash escapes, over several lines too) and comments. An anchor or alias starts
/// a token, so a `*` or `&` inside a plain scalar (`a*b`) is not one.
enum YAMLAnchorScan {
  /// An anchor or alias found in the text.
  struct Finding: Equatable {
    /// The 1-based line.
    var line: Int
    /// The token, such as `*i` or `&a`.
    var token: String
  }

  /// The first anchor or alias in `text`, or `nil` when there is none.
  static func first(in text: String) -> Finding? {
    let bytes = Array(text.utf8)
    var line = 1
    var index = 0
    var previous: UInt8 = UInt8(ascii: "\n")
    func startsToken(_ byte: UInt8) -> Bool {
      byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
        || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{")
        || byte == UInt8(ascii: ",")
    }
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\n") { line += 1 }
      if startsToken(previous) {
        switch byte {
        case UInt8(ascii: "#"):
          while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
          continue
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
          index = endOfQuoted(bytes, from: index, line: &line)
          previous = UInt8(ascii: "'")
          continue
        case UInt8(ascii: "*"), UInt8(ascii: "&"):
          var end = index + 1
          while end < bytes.count, !startsToken(bytes[end]), bytes[end] != UInt8(ascii: "]"),
            bytes[end] != UInt8(ascii: "}")
          {
            end += 1
          }
          return Finding(line: line, token: String(decoding: bytes[index..<end], as: UTF8.self))
        default:
          break
        }
      }
      previous = byte
      index += 1
    }
    return nil
  }

  /// The index just past the quoted scalar that starts at `start`, counting its line breaks.
  private static func endOfQuoted(_ bytes: [UInt8], from start: Int, line: inout Int) -> Int {
    let quote = bytes[start]
    var index = start + 1
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\n") { line += 1 }
      if quote == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") {
        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { line += 1 }
        index += 2
        continue
      }
      if byte == quote {
        // '' inside a single-quoted scalar is an escaped quote.
        if quote == UInt8(ascii: "'"), index + 1 < bytes.count, bytes[index + 1] == quote {
          index += 2
          continue
        }
        return index + 1
      }
      index += 1
    }
    return index
  }
}
