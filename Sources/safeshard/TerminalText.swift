extension String {
  /// The string with its control characters (C0, DEL and C1) written as escapes, `\n`, `\r`,
  /// `\t` or `\u{1B}`, so that a tensor name or metadata value printed as text cannot move the
  /// cursor, clear the screen or break a table line. Other characters, and JSON output, are
  /// left as they are.
  var escapingControlCharacters: String {
    // Most names are printable ASCII: checked by bytes, without decoding scalars.
    if utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return self }
    guard unicodeScalars.contains(where: \.isControlCharacter) else { return self }
    var text = ""
    for scalar in unicodeScalars {
      switch scalar {
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      case _ where scalar.isControlCharacter:
        text += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
      default: text.unicodeScalars.append(scalar)
      }
    }
    return text
  }
}

extension Unicode.Scalar {
  /// C0 controls, DEL and C1 controls (`U+0000`–`U+001F`, `U+007F`–`U+009F`).
  fileprivate var isControlCharacter: Bool { value < 0x20 || (0x7F...0x9F).contains(value) }
}
