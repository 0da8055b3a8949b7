import Foundation
import Pipeline
import Quantization
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

  /// A block-FP8 weight of more elements than one piece (1 Mi) is dequantized piece by piece,
  /// each piece's scale rows read into scratch: every range, across pieces, equals the FP8 rule
  /// computed here element by element.
  @Test func aWeightOfSeveralPiecesReadsTheFP8RuleInTheScratchItAskedFor() throws {
    try withTemporaryDirectory { directory in
      let (rows, columns) = (1100, 1000)
      var generator = SpillTestData.Generator(state: 3)
      // Finite codes (0x7F and 0xFF are NaN), and scales of every block.
      let codes = (0..<rows * columns).map { _ in UInt8(generator.next() % 127) | UInt8(generator.next() % 2) << 7 }
      let scales = (0..<9 * 8).map { Float(1 + $0) / 448 }
      let specs = [
        TensorSpec(name: "model.layers.0.mlp.up_proj.weight", dtype: .f8e4m3, shape: [rows, columns]),
        TensorSpec(name: "model.layers.0.mlp.up_proj.weight_scale_inv", dtype: .f32, shape: [9, 8]),
      ]
      let header = try SafeTensorsHeader(metadata: nil, tensors: specs)
      try OutputCheckTests.write(
        directory + "/model.safetensors", header,
        [codes, scales.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }])
      try #"{"model_type": "llama", "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}"#
        .write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
      let checkpoint = try Checkpoint.input(at: directory, dequantizing: true)
      let (tensor, file) = try #require(checkpoint.tensors.first)
      let expected = codes.enumerated().flatMap { index, code in
        let scale = scales[index / columns / 128 * 8 + index % columns / 128]
        let bits = BFloat16Conversion.bits(from: Float8E4M3Conversion.float(from: code) * scale)
        return [UInt8(truncatingIfNeeded: bits), UInt8(bits >> 8)]
      }
      let count = tensor.byteCount
      for range in [0..<count, 2..<count - 2, 1..<count - 1, (1 << 21) - 7..<(1 << 21) + 9] {
        var bytes = [UInt8](repeating: 0, count: range.count)
        let region = UnsafeMutableRawBufferPointer.allocate(
          byteCount: file.scratchBytes(tensor, count: range.count), alignment: 1)
        defer { region.deallocate() }
        var scratch = ReadScratch(region)
        try bytes.withUnsafeMutableBytes { try file.read(tensor, at: range.lowerBound, into: $0, scratch: &scratch) }
        #expect(bytes[...] == expected[range], "bytes \(range)")
      }
      // A conversion reserves the scratch with each chunk, but a piece (which the spill read-back
      // buffer holds) never holds it.
      let plan = try ConversionPlan(
        checkpoint: checkpoint, recipe: Recipe.load("dequantize"), options: ConversionOptions())
      let share = try MemoryShare(plan: plan, files: checkpoint.files)
      #expect(share.largestJob > share.largestPiece)
    }
  }

  /// An empty FP8 weight needs no scratch: asking did divide by its zero columns.
  @Test func anEmptyFP8WeightNeedsNoScratch() throws {
    try withTemporaryDirectory { directory in
      let specs = [
        TensorSpec(name: "model.layers.0.mlp.up_proj.weight", dtype: .f8e4m3, shape: [4, 0]),
        TensorSpec(name: "model.layers.0.mlp.up_proj.weight_scale_inv", dtype: .f32, shape: [1, 0]),
        TensorSpec(name: "model.norm.weight", dtype: .bf16, shape: [4]),
      ]
      try OutputCheckTests.write(
        directory + "/model.safetensors", try SafeTensorsHeader(metadata: nil, tensors: specs),
        [[], [], [UInt8](repeating: 0, count: 8)])
      try #"{"model_type": "llama", "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}"#
        .write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
      let checkpoint = try Checkpoint.input(at: directory, dequantizing: true)
      let plan = try ConversionPlan(
        checkpoint: checkpoint, recipe: Recipe.load("dequantize"), options: ConversionOptions())
      let share = try MemoryShare(plan: plan, files: checkpoint.files)
      #expect(share.largestJob == share.largestPiece)
    }
  }
}
