using System.Security.Cryptography;
using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>A model whose weights exceed 2 GB: protobuf's message limit must never be hit.</summary>
public class LargeModelTests
{
    private const int TensorCount = 9;
    private const int Rows = 16384, Cols = 4096; // 256 MiB of float32 each: 2.25 GiB in all

    [Fact]
    public void A_model_over_2_GB_round_trips_with_external_data()
    {
        using var dir = new TempFolder();
        long tensorBytes = (long)Rows * Cols * 4;
        var hashes = new List<byte[]>();
        var graph = new GraphProto { Name = "big" };
        graph.Input.Add(TinyModels.FloatInput("X", 1, Rows));
        string previous = "X";
        using (var data = new FileStream(dir.File("big.bin"), FileMode.CreateNew))
        {
            var chunk = new byte[1 << 20];
            for (int t = 0; t < TensorCount; t++)
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                for (long written = 0; written < tensorBytes; written += chunk.Length)
                {
                    // Distinct, cheap content per tensor and chunk, so a mixed-up offset is caught.
                    chunk.AsSpan().Fill((byte)(t * 31 + written / chunk.Length));
                    data.Write(chunk);
                    sha.AppendData(chunk);
                }
                hashes.Add(sha.GetHashAndReset());
                string name = $"W{t}";
                graph.Initializer.Add(TinyModels.ExternalTensor(name, "big.bin", t * tensorBytes, tensorBytes, Rows, Cols));
                // A chain of MatMuls keeps every weight in use: X·W0 is [1, Cols]; the shapes need not run in ORT here.
                graph.Node.Add(IR.Nodes.Create("MatMul", new[] { previous, name }, new[] { $"Y{t}" }, $"mm{t}"));
                previous = $"Y{t}";
            }
        }
        graph.Output.Add(TinyModels.FloatInput(previous, 1, Cols));
        var proto = new ModelProto { IrVersion = 8, Graph = graph };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        TinyModels.Write(proto, dir.File("big.onnx"));

        using (var model = ModelFile.Load(dir.File("big.onnx")))
        {
            Assert.True(model.WeightBytes > 2L * 1024 * 1024 * 1024);
            Assert.All(model.Graph.Initializers.Values, t => Assert.True(t.IsMapped));
            ModelFile.Save(model, dir.File("copy.onnx"));
        }
        Assert.True(new FileInfo(dir.File("copy.onnx")).Length < 4096);
        Assert.True(new FileInfo(dir.File("copy.onnx.data")).Length >= TensorCount * tensorBytes);

        using var copy = ModelFile.Load(dir.File("copy.onnx"));
        for (int t = 0; t < TensorCount; t++)
        {
            var tensor = copy.Graph.GetInitializer($"W{t}")!;
            Assert.Equal(new long[] { Rows, Cols }, tensor.Shape);
            Assert.Equal(hashes[t], SHA256.HashData(tensor.RawBytes));
        }
    }
}
