import Foundation
import Pipeline
import SafeTensors
import Testing

/// A presented input (dequantized FP8, MXFP4 and torchao weights; pickle views gathered from
/// their storage; AffineQuantizedTensor pickles) reads in scratch that the conversion reserves
/// from its budget with the chunk: each source says how much a read of `count` bytes takes
/// (`SafeTensorsFile.scratchBytes(_:count:)`), and a read that takes more traps. Every tensor of
/// every such fixture is read at ranges that start and end inside rows, blocks, elements and
/// pieces, each with exactly the scratch its source asked for, and must give the bytes of the
/// whole tensor.
@Suite struct ReadScratchTests {
  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures").path
  static let inputs = [
    "quantized-input/fp8-block", "quantized-input/ct-fp8-tensor", "quantized-input/ct-fp8-channel",
    "quantized-input/ct-fp8-channel-f16", "quantized-input/mxfp4-gpt-oss", "quantized-input/torchao-int8wo",
    "quantized-input/torchao-int4", "quantized-input/torchao-mxfp8", "quantized-input/torchao-intx4",
    "pickle/plain.pt", "pickle/aqt/int8wo.pt", "pickle/aqt/fp8wo.pt", "pickle/ao/int4",
  ]

  @Test(arguments: inputs)
  func everyRangeReadsInTheScratchItsSourceAskedFor(name: String) throws {
    let checkpoint = try Checkpoint.input(at: "\(Self.fixtures)/\(name)", dequantizing: true)
    var presented = 0
    for (tensor, file) in checkpoint.tensors where tensor.byteCount > 0 {
      let whole = try file.bytes(of: tensor)
      let count = tensor.byteCount
      if file.scratchBytes(tensor, count: count) > 0 { presented += 1 }
      let ranges = [0..<count, 1..<count, 0..<count - 1, count / 3..<2 * count / 3, count - 3..<count, 7..<8]
      for range in ranges where range.lowerBound >= 0 && range.upperBound <= count && !range.isEmpty {
        var bytes = [UInt8](repeating: 0, count: range.count)
        let region = UnsafeMutableRawBufferPointer.allocate(
          byteCount: file.scratchBytes(tensor, count: range.count), alignment: 1)
        defer { region.deallocate() }
        // Aligned to one byte only: the scratch aligns what it hands out itself.
        var scratch = ReadScratch(region)
        try bytes.withUnsafeMutableBytes {
          try file.read(tensor, at: range.lowerBound, into: $0, scratch: &scratch)
        }
        #expect(bytes[...] == whole[range], "\(name): \(tensor.name) bytes \(range)")
      }
    }
    #expect(presented > 0, "\(name) presents no tensor that is read through scratch")
  }
}
