import Foundation
import Testing

@testable import SafeTensors

/// The header scan decodes well-formed entries and metadata without a JSON tree; it must give the
/// same header, or refuse with the same error (rule, message and tensor), as the tree decoder it
/// replaced (``SafeTensorsHeader/treeDecode(json:)``) for every input.
@Suite struct HeaderScanTests {
  static func bothDecodes(_ json: [UInt8]) -> (
    scan: Result<SafeTensorsHeader, SafeTensorsError>,
    tree: Result<SafeTensorsHeader, SafeTensorsError>
  ) {
    json.withUnsafeBytes { buffer in
      (
        Result { () throws(SafeTensorsError) in try SafeTensorsHeader.decode(json: buffer) },
        Result { () throws(SafeTensorsError) in try SafeTensorsHeader.treeDecode(json: buffer) }
      )
    }
  }

  static func expectSame(_ json: [UInt8], _ comment: Comment? = nil) {
    let (scan, tree) = bothDecodes(json)
    switch (scan, tree) {
    case (.success(let a), .success(let b)):
      #expect(a == b, comment)
      #expect(a.tensors.allSatisfy { a.tensor(named: $0.name) == $0 }, comment)
    case (.failure(let a), .failure(let b)): #expect(a == b, comment)
    default:
      Issue.record("the scan and the tree decoder disagree: \(scan) and \(tree) \(comment.map { "\($0)" } ?? "")")
    }
  }

  @Test func spellingsTheScanReadsAndThoseItLeavesToTheTree() {
    let texts = [
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
      #" { "a" : { "shape" : [ 2 ] , "data_offsets" : [ 0 , 8 ] , "dtype" : "F32" } } "#,
      #"{"b":{"dtype":"U8","shape":[],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
      #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}"#,
      #"{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F\u0033\u0032","shape":[2],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#,
      #"{"a":{"dtype":"F32","shape":[9999999999999999999],"data_offsets":[0,8]}}"#,
      #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":"x"}"#,
      #"{"__metadata__":{"k":"v","l":"w"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
      #"{"__metadata__":{"k":"v","k":"\x"}}"#,
      #"{"__metadata__":{"k":"v","l":1}}"#,
      #"{"__metadata__":{"k":"v","l":1,"k":"w"}}"#,
      #"{"__metadata__":{"k":"\u00e9","k\u0301":"x","k\u00e9":"y"}}"#,
      #"{"__metadata__":{"caf\u00e9":"1","cafe\u0301":"2"}}"#,
      #"{"__metadata__":{},"__metadata__":{}}"#,
      #"{"__metadata__":[],"a":{"dtype":"F32"}}"#,
      #"{"a":{"dtype":"F32"},"__metadata__":[]}"#,
      #"{"__metadata__":{"k":"v"}"#,
      #"[{"a":1}]"#, "{}", " {} ", "{} x", #""x""#,
    ]
    for text in texts { Self.expectSame(Array(text.utf8), Comment(rawValue: text)) }
  }

  @Test func mutatedHeadersGiveTheSameHeaderOrTheSameError() throws {
    var random = SeededBytes(seed: 0x5CA7)
    let seeds = try HeaderFuzzTests.seeds()
    for _ in 0..<50_000 {
      let mutant = HeaderFuzzTests.mutate(seeds[random.below(seeds.count)], &random)
      guard mutant.count >= 8 else { continue }
      Self.expectSame(Array(mutant[8...]))
    }
  }

  @Test func aMetadataTextDecodedBeforeIsReused() throws {
    let metadata = ["tensor_names": #"["a"]"#, "a": #"{"_type": "Tensor"}"#, "caf\u{E9}": "x"]
    let first = try SafeTensorsHeader(metadata: metadata, tensors: [TensorSpec(name: "a", dtype: .f32, shape: [2])])
    let second = try SafeTensorsHeader(metadata: metadata, tensors: [TensorSpec(name: "b", dtype: .u8, shape: [3])])
    let cache = HeaderScan.MetadataCache()
    for header in [first, second, first] {
      let decoded = try header.encoded().withUnsafeBytes { bytes in
        try SafeTensorsHeader.decode(json: UnsafeRawBufferPointer(rebasing: bytes[8...]), metadataCache: cache)
      }
      #expect(decoded == header)
    }
    #expect(cache.metadata == metadata)
  }
}
