import Foundation
import Testing

@testable import SafeTensors

/// ``ShardIndex/decode(_:path:)`` reads `weight_map` without a JSON tree (``IndexScan``); it must
/// give the same index, or refuse with the same error (rule, message and tensor), as the tree
/// decoder it replaced (``ShardIndex/treeDecode(_:path:)``) for every input.
@Suite struct IndexScanTests {
  static func expectSame(_ text: [UInt8], _ comment: Comment? = nil) {
    let scan = Result { () throws(SafeTensorsError) in try ShardIndex.decode(text, path: "i.json") }
    let tree = Result { () throws(SafeTensorsError) in try ShardIndex.treeDecode(text, path: "i.json") }
    switch (scan, tree) {
    case (.success(let a), .success(let b)): #expect(a == b, comment)
    case (.failure(let a), .failure(let b)): #expect(a == b, comment)
    default:
      Issue.record("the scan and the tree decoder disagree: \(scan) and \(tree) \(comment.map { "\($0)" } ?? "")")
    }
  }

  /// An index as transformers writes it, `count` tensors over two shards.
  static func transformersIndex(_ count: Int) -> String {
    let entries = (0..<count).map {
      #"    "t.\#($0).weight": "model-0000\#($0 < count / 2 ? 1 : 2)-of-00002.safetensors""#
    }
    return """
      {
        "metadata": {
          "total_size": 1234
        },
        "weight_map": {
      \(entries.joined(separator: ",\n"))
        }
      }

      """
  }

  static let seeds: [String] = [
    transformersIndex(3), transformersIndex(12),
    #"{"weight_map":{"a":"x.safetensors","b":"x.safetensors","c":"y.safetensors","d":"x.safetensors"},"metadata":{}}"#,
    #"{"metadata":{"total_size":1,"k":[1,{"a":null}]},"weight_map":{"a\u00e9":"x\u002esafetensors","b":"x.safetensors"}}"#,
  ]

  @Test func spellingsGiveTheSameIndexOrError() {
    let texts =
      Self.seeds + [
        #"{"weight_map":{}}"#, "{}", "[]", #""x""#, "{} x", " { } ", "",
        #"{"weight_map":{"a":"x","a":"x"}}"#,
        #"{"weight_map":{"a":"x","a":1}}"#,
        #"{"weight_map":{"a":"x","a":"x}}"#,
        #"{"weight_map":{"a":"x","b":1,"c":"../y"}}"#,
        #"{"weight_map":{"a":"x","b":"../y","c":1}}"#,
        #"{"weight_map":{"a":"x","b":"x" "c":"x"}}"#,
        #"{"weight_map":{"a":"x","b":"x",}}"#,
        #"{"weight_map":{"a":"x","b":"x"}"#,
        #"{"weight_map":{"a" "x"}}"#,
        #"{"weight_map":{"a":"x","b":"x\"}}"#,
        #"{"weight_map":{"a":"x","b":"x\u0000"}}"#,
        #"{"weight_map":{"a":[[[[]]]],"b":{"c":{}}}}"#,
        #"{"weight_map":{"caf\u00e9":"x","cafe\u0301":"x"}}"#,
        #"{"weight_map":"x"}"#, #"{"weight_map":[]}"#, #"{"weight_map":{},"weight_map":{}}"#,
        #"{"weight_map":1,"weight_map":{}}"#,
        #"{"metadata":1,"weight_map":{}}"#, #"{"metadata":{},"metadata":{},"weight_map":{}}"#,
        #"{"weight_map":{"a":"x"},"metadata":[1,]}"#,
        "{\"weight_map\":{\"a\":\"x\",\"b\":\"x\"}}\u{0}",
        String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
        #"{"weight_map":{"a":"#,
      ]
    for text in texts { Self.expectSame(Array(text.utf8), Comment(rawValue: text)) }
    let deep = #"{"weight_map":{"a":"# + String(repeating: "[", count: 127) + String(repeating: "]", count: 127) + "}}"
    Self.expectSame(Array(deep.utf8))
    Self.expectSame(Array(deep.utf8.dropLast(2)) + Array("[]]}}".utf8))
  }

  @Test func mutatedIndexesGiveTheSameIndexOrError() {
    var random = SeededBytes(seed: 0x1DE5)
    for _ in 0..<20_000 {
      // `mutate` treats the first 8 bytes as a safetensors length prefix: give it one to spoil.
      let seed = [UInt8](repeating: 0, count: 8) + Array(Self.seeds[random.below(Self.seeds.count)].utf8)
      let mutant = HeaderFuzzTests.mutate(seed, &random)
      Self.expectSame(Array(mutant.dropFirst(8)))
    }
  }
}
