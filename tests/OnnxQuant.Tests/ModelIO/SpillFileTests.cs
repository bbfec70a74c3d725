using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

public class SpillFileTests
{
    [Fact]
    public void Large_new_initializers_move_to_an_invisible_spill_file_and_save_unchanged()
    {
        using var dir = new TempFolder();
        var values = Enumerable.Range(0, 512 * 1024).Select(i => (float)Math.Sin(i)).ToArray(); // 2 MiB
        using var spill = new SpillFile(dir.Path);
        using var model = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", new float[16], new long[] { 4, 4 })), 4, 4));
        model.Graph.Spill = spill;
        model.Graph.SetInitializer(Tensor.FromFloats("big", values, new long[] { 512, 1024 }));
        model.Graph.SetInitializer(Tensor.FromFloats("small", new float[] { 1, 2 }, new long[] { 2 }));

        Assert.True(model.Graph.GetInitializer("big")!.IsOnDisk);
        Assert.False(model.Graph.GetInitializer("small")!.IsOnDisk);
        Assert.Equal(values.Length * 4L, spill.Length);
        Assert.Empty(dir.FileNames()); // unlinked at creation: nothing to leave behind

        Assert.Equal(values, model.Graph.GetInitializer("big")!.ToFloats());
        ModelFile.Save(model, dir.File("out.onnx"));
        using var back = ModelFile.Load(dir.File("out.onnx"));
        Assert.Equal(values, back.Graph.GetInitializer("big")!.ToFloats());
    }
}
