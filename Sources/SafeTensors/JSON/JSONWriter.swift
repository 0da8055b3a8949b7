/// Writes ``JSONValue``s as text, in one of two fixed formats.
///
/// Output depends only on the value, so the same value always gives the same bytes.
public enum JSONWriter {
  /// How the text is laid out.
  public enum Style: Sendable {
    /// No whitespace, non-ASCII as UTF-8: what the safetensors reference (serde_json) writes.
    case compact
    /// `", "` and `": "` separators, non-ASCII as `\uXXXX`: Python's `json.dumps` defaults.
    case python
    /// Python's `json.dumps(value, indent=2)`: one member or element a line, two spaces a
    /// level, non-ASCII as `\uXXXX` (how transformers writes `config.json` and the index).
    case pythonIndented
  }

  /// The text of `value` in `style`.
  public static func string(_ value: JSONValue, style: Style = .compact) -> String {
    var bytes: [UInt8] = []
    append(value, style: style, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Appends the UTF-8 text of `value` to `bytes`.
  public static func append(_ value: JSONValue, style: Style = .compact, to bytes: inout [UInt8]) {
    append(value, style: style, depth: 0, to: &bytes)
  }

  private static func append(_ value: JSONValue, style: Style, depth: Int, to bytes: inout [UInt8]) {
    switch value {
    case .null: bytes.append(contentsOf: "null".utf8)
    case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
    case .number(let text): bytes.append(contentsOf: text.utf8)
    case .string(let text): appendString(text, style: style, to: &bytes)
    case .array(let elements):
      bytes.append(UInt8(ascii: "["))
      for (index, element) in elements.enumerated() {
        appendItemBreak(first: index == 0, style: style, depth: depth + 1, to: &bytes)
        append(element, style: style, depth: depth + 1, to: &bytes)
      }
      if !elements.isEmpty { appendItemBreak(first: true, style: style, depth: depth, to: &bytes) }
      bytes.append(UInt8(ascii: "]"))
    case .object(let members):
      bytes.append(UInt8(ascii: "{"))
      for (index, member) in members.enumerated() {
        appendItemBreak(first: index == 0, style: style, depth: depth + 1, to: &bytes)
        appendString(member.key, style: style, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        if style != .compact { bytes.append(UInt8(ascii: " ")) }
        append(member.value, style: style, depth: depth + 1, to: &bytes)
      }
      if !members.isEmpty { appendItemBreak(first: true, style: style, depth: depth, to: &bytes) }
      bytes.append(UInt8(ascii: "}"))
    }
  }

  /// What goes before an item (and, with `first`, before a closing bracket): a comma unless
  /// first, then a space (python) or a newline and indentation (pythonIndented).
  private static func appendItemBreak(first: Bool, style: Style, depth: Int, to bytes: inout [UInt8]) {
    switch style {
    case .compact:
      if !first { bytes.append(UInt8(ascii: ",")) }
    case .python:
      if !first { bytes.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: " ")]) }
    case .pythonIndented:
      if !first { bytes.append(UInt8(ascii: ",")) }
      bytes.append(UInt8(ascii: "\n"))
      bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
    }
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  /// Appends a quoted string, escaping as serde_json does (`.compact`: only `"`, `\` and
  /// control characters) or as Python's `ensure_ascii=True` does (`.python`: everything outside
  /// printable ASCII, as UTF-16 `\uXXXX`).
  public static func appendString(_ text: String, style: Style, to bytes: inout [UInt8]) {
    bytes.append(UInt8(ascii: "\""))
    var text = text
    switch style {
    case .compact:
      // Runs of bytes that need no escape are copied at once (a torchao description is a JSON
      // text inside a string: a run between each pair of quotes).
      text.withUTF8 { utf8 in
        var runStart = 0
        for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
          bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
          appendEscape(UInt16(byte), to: &bytes)
          runStart = index + 1
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
      }
    case .python, .pythonIndented:
      // Most strings (tensor names, dtypes) need no escape: copy their bytes at once.
      let plain = text.withUTF8 { utf8 in
        let plain = utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E && $0 != 0x22 && $0 != 0x5C }
        if plain { bytes.append(contentsOf: utf8) }
        return plain
      }
      if !plain {
        for unit in text.utf16 {
          if unit < 0x20 || unit > 0x7E || unit == 0x22 || unit == 0x5C {
            appendEscape(unit, to: &bytes)
          } else {
            bytes.append(UInt8(unit))
          }
        }
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }

  /// Appends the escape for one code unit: a short form where JSON has one, else `\uXXXX`.
  private static func appendEscape(_ unit: UInt16, to bytes: inout [UInt8]) {
    let short: UInt8? =
      switch unit {
      case 0x22: 0x22
      case 0x5C: 0x5C
      case 0x08: UInt8(ascii: "b")
      case 0x0C: UInt8(ascii: "f")
      case 0x0A: UInt8(ascii: "n")
      case 0x0D: UInt8(ascii: "r")
      case 0x09: UInt8(ascii: "t")
      default: nil
      }
    bytes.append(0x5C)
    if let short {
      bytes.append(short)
      return
    }
    bytes.append(UInt8(ascii: "u"))
    for shift in stride(from: 12, through: 0, by: -4) {
      bytes.append(hexDigits[Int((unit >> UInt16(shift)) & 0xF)])
    }
  }
}

extension String {
  /// Appends the UTF-8 bytes of the string to `bytes` at once (`append(contentsOf: text.utf8)`
  /// copies them one by one, even for a literal).
  public func appendUTF8(to bytes: inout [UInt8]) {
    var copy = self
    copy.withUTF8 { bytes.append(contentsOf: $0) }
  }
}
