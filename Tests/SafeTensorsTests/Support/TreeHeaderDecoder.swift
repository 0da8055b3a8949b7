@testable import SafeTensors

extension SafeTensorsHeader {
  /// The header decoder as it was before ``HeaderScan``: the whole text parsed into a
  /// ``JSONValue`` tree, then every member judged by the generic rules. The tests hold the scan to
  /// it: the same header, or the same error (rule, message, tensor), for every input.
  static func treeDecode(json bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) -> SafeTensorsHeader {
    let root: JSONValue
    do {
      root = try JSONParser.parse(bytes)
    } catch {
      let code: SafeTensorsError.Code =
        switch error.kind {
        case .encoding: .headerEncoding
        case .syntax: .headerSyntax
        case .depth: .headerDepth
        case .duplicateKey: .duplicateKey
        }
      throw SafeTensorsError(code, "header is not valid JSON: \(error)")
    }
    guard let members = root.members else { throw SafeTensorsError(.headerNotObject, "header is not a JSON object") }
    var metadata: [String: String]?
    var tensors: [TensorInfo] = []
    for member in members {
      if member.key == "__metadata__" {
        metadata = try decodeMetadata(member.value)
      } else {
        tensors.append(try decodeEntry(name: member.key, member.value))
      }
    }
    tensors.sort {
      ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound)
    }
    var end = 0
    for tensor in tensors {
      guard tensor.dataOffsets.lowerBound == end else {
        let problem =
          tensor.dataOffsets.lowerBound < end ? "overlaps the tensor before it" : "leaves a gap after byte \(end)"
        throw SafeTensorsError(
          .offsetsNotContiguous,
          "data_offsets [\(tensor.dataOffsets.lowerBound), \(tensor.dataOffsets.upperBound)] \(problem)",
          tensor: tensor.name)
      }
      end = tensor.dataOffsets.upperBound
    }
    return try SafeTensorsHeader(metadata: metadata, orderedTensors: tensors)
  }
}
