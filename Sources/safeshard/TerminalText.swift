import Foundation

/// Writes `bytes` to standard output as they are: a report of 300 000 tensors is not decoded
/// into a `String` first.
func writeToStandardOutput(_ bytes: [UInt8]) {
  FileHandle.standardOutput.write(Data(bytes))
}

extension String {
  /// The string with its control characters (C0, DEL and C1) written as escapes, `\n`, `\r`,
  /// `\t` or `\u{1B}`, so that a tensor name or metadata value printed as text cannot move the
  /// cursor, clear the screen or break a table line. Other characters, and JSON output, are
  /// left as they are.
  var escapingControlCharacters: String {
    // Most names are printable ASCII: checked by bytes, without decoding scalars.
    if isPrintableASCII { return self }
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

  /// Whether every byte is printable ASCII (U+0020–U+007E): such a string needs no escape and
  /// takes a column a byte.
  var isPrintableASCII: Bool {
    var copy = self
    return copy.withUTF8 { bytes in
      // A byte below 0x20 sets the high bit of `byte - 0x20`; one of 0x7F or more that of
      // `byte + 1` (0xFF that of the first): one branch-free pass the compiler vectorises.
      var outside: UInt8 = 0
      for byte in bytes { outside |= (byte &- 0x20) | (byte &+ 1) }
      return outside & 0x80 == 0
    }
  }
}

extension Unicode.Scalar {
  /// C0 controls, DEL and C1 controls (`U+0000`–`U+001F`, `U+007F`–`U+009F`).
  fileprivate var isControlCharacter: Bool { value < 0x20 || (0x7F...0x9F).contains(value) }
}
