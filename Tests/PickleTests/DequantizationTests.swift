import Quantization
import SafeTensors
import Testing

@testable import Pickle

@Suite("Dequantizing legacy AffineQuantizedTensors")
struct DequantizationTests {
  static let storage = PickleStorage(key: "0", elementType: .u8, elementCount: 4096, byteRange: 0..<4096)

  static func tensor(_ dtype: DType, _ shape: [Int]) throws -> PickleTensor {
    var strides: [Int] = []
    var stride = 1
    for size in shape.reversed() {
      strides.insert(stride, at: 0)
      stride *= size
    }
    return try PickleTensor(dtype: dtype, shape: shape, strides: strides, storageOffset: 0, storage: storage)
  }

  @Test("each element takes the scale and zero point of its block, over every dimension")
  func blocks() throws {
    // A [2, 2, 4] weight in blocks of [1, 1, 2]: a [2, 2, 2] grid of 8 blocks.
    let weight = AffineQuantizedTensor(
      layout: .plain, data: try Self.tensor(.i8, [2, 2, 4]), scale: try Self.tensor(.f32, [2, 2, 2]),
      zeroPoint: try Self.tensor(.i8, [2, 2, 2]), blockSize: [1, 1, 2], shape: [2, 2, 4], dtype: .fp32,
      quantizationRange: -128...127, inputQuantization: nil)
    let data: [Int8] = (0..<16).map { Int8($0) - 8 }
    let scales: [Float] = [1, 2, 0.5, 4, 1, 0.25, 2, 8]
    let zeros: [Int8] = [0, 1, 0, -3, 2, 0, 0, 1]
    var expected: [Float] = []
    for i in 0..<2 {
      for j in 0..<2 {
        for k in 0..<4 {
          let block = i * 4 + j * 2 + k / 2
          expected.append(Float(Int(data[i * 8 + j * 4 + k]) - Int(zeros[block])) * scales[block])
        }
      }
    }
    // Rows 1..<4 of the 4 rows (i, j), as the pipeline hands a chunk.
    let rows = 1..<4
    var output = [Float](repeating: .nan, count: rows.count * 4)
    try data.withUnsafeBytes { data in
      try scales.withUnsafeBytes { scale in
        try zeros.withUnsafeBytes { zero in
          try output.withUnsafeMutableBytes { output in
            try weight.dequantize(
              rows: rows, data: UnsafeRawBufferPointer(rebasing: data[4...]), scale: scale, zeroPoint: zero,
              into: output)
          }
        }
      }
    }
    #expect(output == Array(expected[4...]))
  }

  @Test("the difference is rounded to the weight's dtype, then the product in Float, then rounded again")
  func rounding() throws {
    let weight = AffineQuantizedTensor(
      layout: .plain, data: try Self.tensor(.i32, [1, 2]), scale: try Self.tensor(.bf16, [1, 1]), zeroPoint: nil,
      blockSize: [1, 2], shape: [1, 2], dtype: .bf16, quantizationRange: nil, inputQuantization: nil)
    // 257 is not a bf16 (it rounds to 256); 3 × 1.0078125 = 3.0234375 needs 9 bits (rounds to 3.03125).
    let data: [Int32] = [257, 3]
    let scale: [UInt16] = [BFloat16Conversion.bits(from: 1.0078125)]
    var output = [UInt16](repeating: 0, count: 2)
    try data.withUnsafeBytes { data in
      try scale.withUnsafeBytes { scale in
        try output.withUnsafeMutableBytes { output in
          try weight.dequantize(rows: 0..<1, data: data, scale: scale, zeroPoint: nil, into: output)
        }
      }
    }
    #expect(output.map { BFloat16Conversion.float(from: $0) } == [BFloat16Conversion.round(256 * 1.0078125), 3.03125])
  }

  @Test("buffers of the wrong size are refused")
  func sizes() throws {
    let weight = AffineQuantizedTensor(
      layout: .float8, data: try Self.tensor(.f8e4m3, [2, 2]), scale: try Self.tensor(.f32, [2, 1]), zeroPoint: nil,
      blockSize: [1, 2], shape: [2, 2], dtype: .bf16, quantizationRange: nil, inputQuantization: nil)
    let bytes = [UInt8](repeating: 0, count: 16)
    var output = [UInt8](repeating: 0, count: 4)
    #expect(throws: PickleError.self) {
      try bytes.withUnsafeBytes { buffer in
        try output.withUnsafeMutableBytes { output in
          try weight.dequantize(
            rows: 0..<2, data: UnsafeRawBufferPointer(rebasing: buffer[0..<4]),
            scale: UnsafeRawBufferPointer(rebasing: buffer[0..<8]),
            zeroPoint: nil, into: output)
        }
      }
    }
  }
}
