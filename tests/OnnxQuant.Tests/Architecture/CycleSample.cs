// A deliberate namespace cycle (Left <-> Left.Inner, one level deeper) and a one-way use (Right -> Left), so
// LayeringTests can show that its cycle rule fails on a cycle, at full namespace depth, and names both namespaces.
namespace OnnxQuant.Tests.Architecture.CycleSample.Left
{
    public sealed class Producer
    {
        public Inner.Consumer? Next { get; set; }
    }
}

namespace OnnxQuant.Tests.Architecture.CycleSample.Left.Inner
{
    public sealed class Consumer
    {
        public Left.Producer? Source { get; set; }
    }
}

namespace OnnxQuant.Tests.Architecture.CycleSample.Right
{
    public sealed class User
    {
        public Left.Producer? Uses { get; set; }
    }
}
