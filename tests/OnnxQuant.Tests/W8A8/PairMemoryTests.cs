using Onnx;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Tests.ModelIO;

namespace OnnxQuant.Tests.W8A8;

/// <summary>The check that keeps the verification from opening two models that do not fit in memory together.</summary>
public class PairMemoryTests
{
    [Fact]
    public void A_session_holds_fp32_weights_once_and_fp16_weights_widened()
    {
        using var dir = new TempFolder();
        string fp32 = Save(dir, "fp32.onnx", TensorProto.Types.DataType.Float, 64, 32);
        string fp16 = Save(dir, "fp16.onnx", TensorProto.Types.DataType.Float16, 64, 32);

        Assert.Equal(64 * 32 * 4, PairMemory.SessionBytes(fp32));
        Assert.Equal(64 * 32 * 2 * 2, PairMemory.SessionBytes(fp16));
    }

    [Fact]
    public void Two_models_past_the_available_memory_are_refused_with_the_way_out()
    {
        using var dir = new TempFolder();
        string original = Save(dir, "original.onnx", TensorProto.Types.DataType.Float16, 256, 256);
        string emitted = Save(dir, "emitted.onnx", TensorProto.Types.DataType.Float, 256, 256);
        long needed = (long)(1.1 * (256 * 256 * 2 * 2 + 256 * 256 * 4)); // 288 KB

        var e = Assert.Throws<OnnxQuantException>(() => PairMemory.EnsureFits(original, emitted, "the held-out check", needed - 1024));
        Assert.Equal(ExitCode.Unsupported, e.ExitCode);
        Assert.Contains("the held-out check needs both models", e.Message);
        Assert.Contains($"onnxquant eval {emitted} --reference {original}", e.Message);
        Assert.Contains("--no-verify", e.Message);
        PairMemory.EnsureFits(original, emitted, "the held-out check", needed + 1024);
        PairMemory.EnsureFits(original, emitted, "the held-out check", null);
    }

    [Fact]
    public void Available_memory_is_read_from_the_kernel()
    {
        var available = PairMemory.AvailableBytes();
        Assert.NotNull(available); // this suite runs on Linux
        Assert.InRange(available!.Value, 1L << 20, 1L << 50);
    }

    private static string Save(TempFolder dir, string name, TensorProto.Types.DataType type, int k, int n)
    {
        var values = Enumerable.Range(0, k * n).Select(i => (float)Math.Sin(i)).ToArray();
        using var model = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", values, [k, n], type)), k, n));
        string path = dir.File(name);
        ModelFile.Save(model, path);
        return path;
    }
}
