import Pipeline
import Testing

@Suite struct ByteSizeTests {
  @Test(arguments: [
    ("5GB", 5_000_000_000), ("500MB", 500_000_000), ("1KB", 1_000), ("2TB", 2_000_000_000_000),
    ("1GiB", 1 << 30), ("256MiB", 256 << 20), ("1KiB", 1_024), ("3TiB", 3 << 40),
    ("1048576", 1_048_576), ("0", 0), ("512B", 512), ("512 b", 512),
    ("5gb", 5_000_000_000), ("5 GB", 5_000_000_000), ("1gib", 1 << 30), (" 1 GiB ", 1 << 30),
    ("1.5GB", 1_500_000_000), ("1.5 GiB", 1_610_612_736), ("0.5KiB", 512), ("1.0001KB", 1_000),
  ])
  func sizesParseTheHuggingFaceWay(text: String, bytes: Int) throws {
    #expect(try ByteSize(text).bytes == bytes)
  }

  @Test(arguments: ["", "GB", "5XB", "5 G", "-5GB", "+5GB", "5e9", "1.2.3GB", ".5GB", "5.GB", "five GB", "5GB5"])
  func anythingElseIsRefusedSayingWhatIsAllowed(text: String) {
    let error = #expect(throws: RecipeError.self) { try ByteSize(text) }
    #expect(error?.code == .invalidValue)
    #expect(error?.description.contains("'\(text)'") == true)
    #expect(error?.description.contains("KiB") == true)
  }

  @Test(arguments: ["9223372036854775808", "9300PB", "8192PiB"])
  func aSizeTooLargeForIntIsRefused(text: String) {
    let error = #expect(throws: RecipeError.self) { try ByteSize(text) }
    #expect(error?.description.contains("too large") == true)
  }

  @Test func theLargestSizeStillParses() throws {
    #expect(try ByteSize("9223372036854775807").bytes == Int.max)
    #expect(try ByteSize("8191.99PiB").bytes == 9_223_360_777_855_707_381)
  }

  @Test(arguments: [
    (0, "0 B"), (512, "512 B"), (1_023, "1023 B"), (1_024, "1.00 KiB"), (1_536, "1.50 KiB"), (1 << 30, "1.00 GiB"),
    (5_000_000_000, "4.66 GiB"), (1_048_575, "1.00 MiB"), (3 << 40, "3.00 TiB"), (-2_048, "-2.00 KiB"),
    (Int.max, "8.00 EiB"),
  ])
  func sizesFormatInBinaryUnitsWithTwoDecimals(bytes: Int, text: String) {
    #expect(ByteSize(bytes: bytes).description == text)
  }

  @Test func sizesCompareByTheirByteCount() throws {
    #expect(try ByteSize("1GB") < ByteSize("1GiB"))
    #expect(try ByteSize("1024MiB") == ByteSize("1GiB"))
  }
}
