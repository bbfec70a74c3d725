using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>Reading a weight in parallel slices and in row bands gives the values a plain element-by-element decode gives.</summary>
public class TensorDecodeTests
{
    [Theory]
    [InlineData(TensorProto.Types.DataType.Float16)]
    [InlineData(TensorProto.Types.DataType.Float)]
    public void ParallelSlicesAndRangesOfAMappedTensorEqualTheSerialDecode(TensorProto.Types.DataType type)
    {
        using var dir = new TempFolder();
        // 3.5 M elements: several 1 M-element slices, the last one partial.
        int k = 1750, n = 2000;
        var rng = new Random(3);
        var values = new float[k * n];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 8 - 4);
        using (var model = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", values, [k, n], type)), k, n)))
            ModelFile.Save(model, dir.File("m.onnx"));
        using var back = ModelFile.Load(dir.File("m.onnx"));
        var tensor = back.Graph.GetInitializer("W")!;
        Assert.True(tensor.IsMapped);

        var expected = new float[values.Length];
        FloatCodec.Decode(tensor.RawBytes, type, expected); // one serial decode of the whole tensor
        Assert.Equal(expected, tensor.ToFloats());
        var band = new float[37 * n];
        tensor.DecodeRange(1000L * n, band);
        Assert.Equal(expected.AsSpan(1000 * n, 37 * n).ToArray(), band);
        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.DecodeRange((long)(k - 36) * n, band));

        // A tile (the streamed 4-bit rewrite's read): rows 1000..1127, columns 1900..1999 (the last, partial tile),
        // from the mapping, from owned bytes and from the spill file alike.
        using var spill = new SpillFile(dir.Path);
        var owned = Tensor.FromBytes("W", type, [k, n], tensor.RawBytes.ToArray());
        foreach (var source in new[] { tensor, owned, spill.Write(owned) })
        {
            var tile = new float[128 * 100];
            source.DecodeTile(1000L * n + 1900, 128, 100, n, tile);
            for (int r = 0; r < 128; r++)
                Assert.Equal(expected.AsSpan((1000 + r) * n + 1900, 100).ToArray(), tile.AsSpan(r * 100, 100).ToArray());
            Assert.Throws<ArgumentOutOfRangeException>(() => source.DecodeTile((long)(k - 127) * n + 1900, 128, 100, n, tile));
        }
    }

    [Fact]
    public void ParallelFp16EncodingEqualsTheSerialConversion()
    {
        var rng = new Random(4);
        var values = new float[(3 << 20) + 123]; // three full slices and a partial one
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 200 - 100);
        var expected = new Half[values.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(values, expected);
        var tensor = Tensor.FromFloats("t", values, [values.Length], TensorProto.Types.DataType.Float16);
        Assert.Equal(System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.AsSpan()).ToArray(), tensor.RawBytes.ToArray());
    }
}
