import Pipeline
import Testing

@Suite struct BuildInfoTests {
  @Test func liblz4IsLinkedAndReportsItsVersion() {
    let parts = BuildInfo.lz4Version.split(separator: ".")
    #expect(parts.count == 3 && parts.allSatisfy { Int($0) != nil })
  }
}
