import Foundation

/// A tensor name compared and hashed by its UTF-8 bytes, as the safetensors reference, Python and
/// torch compare names.
///
/// Swift's `String ==` is canonical equivalence: `café` spelled with a precomposed `é` (NFC) and
/// with `e` and a combining accent (NFD) are equal as `String`s, though they are two names to
/// every other tool. Tables of tensor names are keyed by this type, so that a valid file holding
/// both spellings keeps two tensors.
public struct ExactName: Hashable, Sendable {
  /// The name.
  public let string: String

  /// Wraps `string`.
  public init(_ string: String) {
    self.string = string
  }

  public static func == (lhs: ExactName, rhs: ExactName) -> Bool {
    let equal = lhs.string.utf8.withContiguousStorageIfAvailable { left in
      rhs.string.utf8.withContiguousStorageIfAvailable { right in
        left.count == right.count && (left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
      }
    }
    return (equal ?? nil) ?? lhs.string.utf8.elementsEqual(rhs.string.utf8)
  }

  public func hash(into hasher: inout Hasher) {
    let hashed: Void? = string.utf8.withContiguousStorageIfAvailable {
      hasher.combine(bytes: UnsafeRawBufferPointer($0))
    }
    if hashed == nil {
      for byte in string.utf8 { hasher.combine(byte) }
    }
  }
}
