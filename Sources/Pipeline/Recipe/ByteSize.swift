import Foundation

/// A number of bytes, written the way Hugging Face writes shard sizes: `5GB`, `500MB`, `1GiB`.
///
/// Parsing (``init(_:)``) takes a decimal number, an optional space and an optional unit; units
/// are case-insensitive. Decimal units are powers of 1000 (`KB` = 10³, `MB`, `GB`, `TB`, `PB`),
/// binary units powers of 1024 (`KiB` = 2¹⁰, `MiB`, `GiB`, `TiB`, `PiB`), and `B` or no unit means
/// bytes. A fraction is allowed (`1.5GB` = 1 500 000 000 bytes) and a result with a fraction of a
/// byte is rounded down. Unlike transformers, a lowercase `b` never means bits.
///
/// ``description`` shows the size for people in binary units with two decimals (`1.00 GiB`,
/// `4.66 GiB` for 5 GB), or in whole bytes below 1 KiB (`512 B`).
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible {
  /// The number of bytes.
  public var bytes: Int

  /// A size of `bytes` bytes.
  public init(bytes: Int) {
    self.bytes = bytes
  }

  /// The units ``init(_:)`` accepts, lowercased, with their sizes in bytes.
  private static let units: [String: Int] = [
    "": 1, "b": 1,
    "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000, "pb": 1_000_000_000_000_000,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
  ]

  /// What ``init(_:)`` accepts, for error messages.
  public static let syntax =
    "a number of bytes, or a number with a unit: KB, MB, GB, TB, PB (powers of 1000) or KiB, MiB, GiB, TiB, PiB "
    + "(powers of 1024), e.g. 5GB, 1.5GB, 512MiB"

  /// Parses a size such as `5GB`, `1.5 GiB`, `500mb` or `1048576`.
  ///
  /// - Throws: `invalidValue` when `text` is not a non-negative decimal number with an optional
  ///   known unit, or when the size does not fit in `Int`.
  public init(_ text: String) throws(RecipeError) {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
    let unitText = trimmed[digits.endIndex...].trimmingCharacters(in: .whitespaces)
    let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
    guard let unit = Self.units[unitText.lowercased()] else {
      throw RecipeError(.invalidValue, "'\(text)' is not a byte size: unknown unit '\(unitText)'; use \(Self.syntax)")
    }
    guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
      throw RecipeError(.invalidValue, "'\(text)' is not a byte size; use \(Self.syntax)")
    }
    // Exact integer arithmetic: the fraction's digits scale the unit, then divide back down.
    var numerator = 0
    var denominator = 1
    for digit in parts.joined() {
      let (shifted, overflow) = numerator.multipliedReportingOverflow(by: 10)
      let (sum, carry) = shifted.addingReportingOverflow(digit.wholeNumberValue ?? 0)
      guard !overflow, !carry else { throw Self.tooLarge(text) }
      numerator = sum
    }
    for _ in (parts.count == 2 ? parts[1] : "") {
      let (scaled, overflow) = denominator.multipliedReportingOverflow(by: 10)
      guard !overflow else { throw Self.tooLarge(text) }
      denominator = scaled
    }
    // numerator * unit / denominator, without overflowing when only the intermediate product is big.
    let whole = numerator / denominator
    let remainder = numerator % denominator
    let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: unit)
    let (remainderBytes, remainderOverflow) = remainder.multipliedReportingOverflow(by: unit)
    guard !overflow, !remainderOverflow else { throw Self.tooLarge(text) }
    let (total, carry) = wholeBytes.addingReportingOverflow(remainderBytes / denominator)
    guard !carry else { throw Self.tooLarge(text) }
    bytes = total
  }

  private static func tooLarge(_ text: String) -> RecipeError {
    RecipeError(.invalidValue, "'\(text)' is too large a byte size (the largest is \(Int.max) bytes)")
  }

  /// The size for people: `512 B`, `1.00 KiB`, `4.66 GiB`.
  public var description: String {
    let names = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    let sign = bytes < 0 ? "-" : ""
    guard bytes.magnitude >= 1024 else { return "\(bytes) B" }
    var value = Double(bytes.magnitude)
    var index = 0
    // Step up while the value would print as 1024.00 or more, so 1023.999 KiB reads 1.00 MiB.
    while (value * 100).rounded() >= 102_400 && index < names.count - 1 {
      value /= 1024
      index += 1
    }
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(sign)\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) \(names[index])"
  }

  /// Orders sizes by their byte count.
  public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }
}
