/// The working memory a read of a presented tensor uses beside its buffer (a dequantizing
/// source's scale rows and packed codes, a row a range starts inside): carved front to back from
/// one region the caller owns, so that a conversion can reserve it from its memory budget with
/// the chunk it reads. ``TensorByteSource/scratchBytes(_:count:)`` says how much a read needs.
public struct ReadScratch {
  /// The alignment of every piece ``take(_:)`` hands out.
  public static let alignment = 64

  private let region: UnsafeMutableRawBufferPointer
  private var used = 0

  /// Scratch carved from `region`, which the caller keeps alive while the scratch is used.
  public init(_ region: UnsafeMutableRawBufferPointer) {
    self.region = region
  }

  /// The bytes a ``take(_:)`` of each of `counts` uses at most, alignment included: what a source
  /// adds up for ``TensorByteSource/scratchBytes(_:count:)``.
  public static func bytes(_ counts: Int...) -> Int {
    counts.reduce(0) { $0 + $1 + alignment - 1 }
  }

  /// `count` uninitialised bytes, aligned to ``alignment``, held until the end of the
  /// ``scoped(_:)`` call that took them (or for as long as the scratch lives).
  ///
  /// - Precondition: they fit: the source's ``TensorByteSource/scratchBytes(_:count:)`` covered
  ///   them.
  public mutating func take(_ count: Int) -> UnsafeMutableRawBufferPointer {
    let base = Int(bitPattern: region.baseAddress)
    let start = (base + used + Self.alignment - 1) / Self.alignment * Self.alignment - base
    precondition(
      count >= 0 && start + count <= region.count,
      "Invalid scratch use: \(count) bytes at \(start) of \(region.count); scratchBytes(_:count:) is too small.")
    used = start + count
    return UnsafeMutableRawBufferPointer(rebasing: region[start..<start + count])
  }

  /// Runs `body`, then gives back everything it took.
  public mutating func scoped<Result, Failure: Error>(
    _ body: (inout ReadScratch) throws(Failure) -> Result
  ) throws(Failure) -> Result {
    let mark = used
    defer { used = mark }
    return try body(&self)
  }
}
