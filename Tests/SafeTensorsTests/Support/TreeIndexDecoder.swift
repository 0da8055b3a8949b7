@testable import SafeTensors

extension ShardIndex {
  /// The index decoder that ``IndexScan`` replaced, kept as the oracle for `IndexScanTests`:
  /// the whole text parsed into a ``JSONValue`` tree, then judged.
  static func treeDecode(_ bytes: [UInt8], path: String) throws(SafeTensorsError) -> ShardIndex {
    let root: JSONValue
    do {
      root = try JSONParser.parse(bytes)
    } catch {
      throw SafeTensorsError(.indexFormat, "not valid JSON: \(error)", file: path)
    }
    guard root.members != nil else { throw SafeTensorsError(.indexFormat, "not a JSON object", file: path) }
    guard let map = root["weight_map"]?.members else {
      throw SafeTensorsError(.indexFormat, "has no \"weight_map\" object", file: path)
    }
    var metadata: [JSONMember] = []
    if let value = root["metadata"] {
      guard let members = value.members else {
        throw SafeTensorsError(.indexFormat, "\"metadata\" is not an object", file: path)
      }
      metadata = members
    }
    var weightMap: [(tensor: String, file: String)] = []
    for member in map {
      guard let file = member.value.string else {
        throw SafeTensorsError(.indexFormat, "weight_map value is not a string", file: path, tensor: member.key)
      }
      if let problem = unsafeNameProblem(file) {
        throw SafeTensorsError(.unsafeShardName, "shard name \"\(file)\" \(problem)", file: path, tensor: member.key)
      }
      weightMap.append((member.key, file))
    }
    return ShardIndex(metadata: metadata, weightMap: weightMap)
  }
}
