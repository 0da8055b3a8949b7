import SafeTensors
import Testing

@Suite struct TensorInfoTests {
  @Test func theElementCountIsTheProductOfTheDimensions() {
    #expect(TensorInfo(name: "w", dtype: .f32, shape: [2, 3, 4], dataOffsets: 0..<96).elementCount == 24)
    #expect(TensorInfo(name: "s", dtype: .f32, shape: [], dataOffsets: 0..<4).elementCount == 1)
    // A zero dimension empties the tensor, however large the others.
    #expect(TensorInfo(name: "e", dtype: .f32, shape: [1 << 40, 1 << 40, 0], dataOffsets: 0..<0).elementCount == 0)
  }

  @Test func aHandBuiltShapeWithANegativeDimensionTraps() async {
    await #expect(processExitsWith: .failure) {
      _ = TensorInfo(name: "w", dtype: .f32, shape: [-2, 3], dataOffsets: 0..<0).elementCount
    }
  }

  @Test func aHandBuiltShapeWhoseCountOverflowsTraps() async {
    await #expect(processExitsWith: .failure) {
      _ = TensorInfo(name: "w", dtype: .f32, shape: [1 << 32, 1 << 32], dataOffsets: 0..<0).elementCount
    }
  }
}
