import Foundation

extension String {
  /// Where `needle`'s UTF-8 bytes first occur in this string's, or `nil`: a byte search, as
  /// Python's `in` finds a substring of a tensor name (no canonical equivalence), and fast enough
  /// to run on each of 100 000 names.
  func firstByteRange(of needle: String) -> Range<String.Index>? {
    var haystack = self
    var needle = needle
    let offset: Int? = haystack.withUTF8 { text -> Int? in
      needle.withUTF8 { pattern -> Int? in
        guard let first = pattern.first, pattern.count <= text.count else { return nil }
        let last = text.count - pattern.count
        var start = 0
        while start <= last, let found = text[start...last].firstIndex(of: first) {
          if memcmp(text.baseAddress! + found, pattern.baseAddress!, pattern.count) == 0 { return found }
          start = found + 1
        }
        return nil
      }
    }
    guard let offset else { return nil }
    let start = utf8.index(utf8.startIndex, offsetBy: offset)
    return start..<utf8.index(start, offsetBy: needle.utf8.count)
  }
}
