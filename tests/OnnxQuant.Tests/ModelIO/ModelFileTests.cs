using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

public class ModelFileTests
{
    private static float[] Ramp(int n, float step = 0.25f) => Enumerable.Range(0, n).Select(i => (i % 17 - 8) * step).ToArray();

    private static TensorProto InlineFloat(string name, float[] values, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        t.Dims.AddRange(dims);
        return t;
    }

    [Fact]
    public void Save_puts_large_tensors_in_one_aligned_data_file_and_load_reads_them_back()
    {
        using var dir = new TempFolder();
        var w = Ramp(64 * 32);
        using (var model = OnnxModel.FromProto(TinyModels.MatMul(InlineFloat("W", w, 64, 32), 64, 32)))
        {
            var small = Tensor.FromFloats("small", new float[] { 1, 2, 3 }, new long[] { 3 });
            model.Graph.SetInitializer(small);
            ModelFile.Save(model, dir.File("out.onnx"));
        }
        Assert.Equal(new[] { "out.onnx", "out.onnx.data" }, dir.FileNames());
        // 8 KiB of weights live in the data file; the proto keeps only the 12-byte tensor inline.
        Assert.True(new FileInfo(dir.File("out.onnx")).Length < 1024);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir.File("out.onnx")));
        var wProto = proto.Graph.Initializer.Single(t => t.Name == "W");
        Assert.Equal(TensorProto.Types.DataLocation.External, wProto.DataLocation);
        Assert.Equal(0, long.Parse(wProto.ExternalData.Single(e => e.Key == "offset").Value) % 4096);
        Assert.Equal("out.onnx.data", wProto.ExternalData.Single(e => e.Key == "location").Value);
        Assert.Equal(TensorProto.Types.DataLocation.Default, proto.Graph.Initializer.Single(t => t.Name == "small").DataLocation);

        using var back = ModelFile.Load(dir.File("out.onnx"));
        var loaded = back.Graph.GetInitializer("W")!;
        Assert.True(loaded.IsMapped);
        Assert.Equal(w, loaded.ToFloats());
        Assert.Equal(new float[] { 1, 2, 3 }, back.Graph.GetInitializer("small")!.ToFloats());
    }

    [Theory]
    [InlineData(TensorProto.Types.DataType.Float16)]
    [InlineData(TensorProto.Types.DataType.Bfloat16)]
    [InlineData(TensorProto.Types.DataType.Float)]
    public void Float_values_round_trip_through_raw_data_and_typed_fields(TensorProto.Types.DataType type)
    {
        var values = new[] { 0f, 1f, -2.5f, 0.125f, 65504f / 4, -1e-3f };
        var tensor = Tensor.FromFloats("t", values, new long[] { 2, 3 }, type);
        float[] raw = tensor.ToFloats();
        float tol = type == TensorProto.Types.DataType.Bfloat16 ? 1e-2f : type == TensorProto.Types.DataType.Float16 ? 1e-3f : 0f;
        for (int i = 0; i < values.Length; i++)
            Assert.True(Math.Abs(raw[i] - values[i]) <= tol * Math.Max(1, Math.Abs(values[i])), $"{type} [{i}]: {raw[i]} vs {values[i]}");

        // The same values in the typed fields (float_data, or int32_data holding 16-bit patterns) read identically.
        var typed = new TensorProto { Name = "t", DataType = (int)type };
        typed.Dims.AddRange(new long[] { 2, 3 });
        if (type == TensorProto.Types.DataType.Float)
            typed.FloatData.AddRange(values);
        else
            typed.Int32Data.AddRange(MemoryMarshal.Cast<byte, ushort>(tensor.RawBytes).ToArray().Select(u => (int)u));
        using var model = OnnxModel.FromProto(TinyModels.MatMul(typed, 2, 3));
        Assert.Equal(raw, model.Graph.GetInitializer("t")!.ToFloats());
    }

    [Fact]
    public void Bfloat16_rounds_to_nearest_even()
    {
        Assert.Equal(0x3F80, FloatCodec.ToBFloat16(1.0f));
        Assert.Equal(0x3F80, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F808000))); // tie -> even
        Assert.Equal(0x3F82, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F818000))); // tie -> even (up)
        Assert.Equal(0x3F81, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F80C000)));
    }

    private static (string model, string data) WriteExternalModel(TempFolder dir, string location, long offset, long length, int dataBytes)
    {
        string data = dir.File("weights.bin");
        File.WriteAllBytes(data, new byte[dataBytes]);
        string model = dir.File("model.onnx");
        TinyModels.Write(TinyModels.MatMul(TinyModels.ExternalTensor("W", location, offset, length, 16, 16), 16, 16), model);
        return (model, data);
    }

    [Theory]
    [InlineData("../weights.bin", "escapes the model's folder")]
    [InlineData("/etc/passwd", "absolute external data location")]
    [InlineData("sub/../../weights.bin", "escapes the model's folder")]
    [InlineData("missing.bin", "does not exist")]
    public void Unsafe_or_missing_external_locations_are_refused_and_nothing_is_written(string location, string expected)
    {
        using var dir = new TempFolder();
        var (model, _) = WriteExternalModel(dir, location, 0, 1024, 1024);
        var before = dir.FileNames();
        var e = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(model));
        Assert.Contains(expected, e.Message);
        Assert.Contains("model.onnx", e.Message);
        Assert.Equal(ExitCode.BadInput, e.ExitCode);
        Assert.Equal(before, dir.FileNames());
    }

    [Fact]
    public void Truncated_external_data_is_refused_with_the_byte_range()
    {
        using var dir = new TempFolder();
        var (model, _) = WriteExternalModel(dir, "weights.bin", 512, 1024, 1000);
        var e = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(model));
        Assert.Contains("weights.bin", e.Message);
        Assert.Contains("[512, 1536)", e.Message);
        Assert.Contains("1000", e.Message);
    }

    [Fact]
    public void External_length_that_disagrees_with_the_shape_is_refused()
    {
        using var dir = new TempFolder();
        var (model, _) = WriteExternalModel(dir, "weights.bin", 0, 1000, 4096);
        var e = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(model));
        Assert.Contains("needs 1024 bytes", e.Message);
    }

    [Fact]
    public void Truncated_or_foreign_model_files_give_a_clear_error()
    {
        using var dir = new TempFolder();
        var bytes = TinyModels.MatMul(InlineFloat("W", Ramp(64), 8, 8), 8, 8).ToByteArray();
        File.WriteAllBytes(dir.File("cut.onnx"), bytes[..(bytes.Length * 2 / 3)]);
        var cut = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(dir.File("cut.onnx")));
        Assert.Contains("cut.onnx", cut.Message);
        Assert.Contains("not a valid ONNX model", cut.Message);

        File.WriteAllText(dir.File("notes.onnx"), "hello, this is not a model\n");
        var text = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(dir.File("notes.onnx")));
        Assert.Contains("notes.onnx", text.Message);

        var missing = Assert.Throws<OnnxQuantException>(() => ModelFile.Load(dir.File("absent.onnx")));
        Assert.Contains("does not exist", missing.Message);
    }

    [Fact]
    public void Saving_over_the_input_or_into_a_missing_folder_is_refused_without_leftovers()
    {
        using var dir = new TempFolder();
        using (var m = OnnxModel.FromProto(TinyModels.MatMul(InlineFloat("W", Ramp(64 * 64), 64, 64), 64, 64)))
            ModelFile.Save(m, dir.File("in.onnx"));
        byte[] modelBefore = File.ReadAllBytes(dir.File("in.onnx")), dataBefore = File.ReadAllBytes(dir.File("in.onnx.data"));
        using var model = ModelFile.Load(dir.File("in.onnx"));
        var same = Assert.Throws<OnnxQuantException>(() => ModelFile.Save(model, dir.File("in.onnx")));
        Assert.Contains("is the input model", same.Message);
        var missing = Assert.Throws<OnnxQuantException>(() => ModelFile.Save(model, Path.Combine(dir.Path, "nope", "out.onnx")));
        Assert.Equal(ExitCode.OutputError, missing.ExitCode);
        Assert.Equal(new[] { "in.onnx", "in.onnx.data" }, dir.FileNames());
        Assert.Equal(modelBefore, File.ReadAllBytes(dir.File("in.onnx")));
        Assert.Equal(dataBefore, File.ReadAllBytes(dir.File("in.onnx.data")));
    }

    [Fact]
    public void Cancelled_save_leaves_no_file()
    {
        using var dir = new TempFolder();
        using var model = OnnxModel.FromProto(TinyModels.MatMul(InlineFloat("W", Ramp(64 * 64), 64, 64), 64, 64));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => ModelFile.Save(model, dir.File("out.onnx"), cancel: cts.Token));
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void Save_is_deterministic()
    {
        using var dir = new TempFolder();
        using var model = OnnxModel.FromProto(TinyModels.MatMul(InlineFloat("W", Ramp(64 * 64), 64, 64), 64, 64));
        ModelFile.Save(model, dir.File("a.onnx"));
        ModelFile.Save(model, dir.File("b.onnx"));
        Assert.Equal(File.ReadAllBytes(dir.File("a.onnx.data")), File.ReadAllBytes(dir.File("b.onnx.data")));
        // The protos differ only in the data file's name.
        var a = ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir.File("a.onnx")));
        var b = ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir.File("b.onnx")));
        b.Graph.Initializer.Single().ExternalData.Single(e => e.Key == "location").Value = "a.onnx.data";
        Assert.Equal(a.ToByteArray(), b.ToByteArray());
    }
}
