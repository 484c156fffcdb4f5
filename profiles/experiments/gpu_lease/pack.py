import gzip, lzma, numpy as np
rows=[]; em=[]; us=[]
with gzip.open('../shared/data/fer2013_train_publictest.csv.gz','rt') as f:
    header=next(f)
    for line in f:
        e,p,u=line.rstrip('\n').split(',')
        em.append(int(e)); us.append(u); rows.append(np.array(p.split(),np.uint8))
X=np.stack(rows)
np.savez('.gpudata/meta.npz', emotion=np.array(em,np.uint8), usage=np.array(us))
open('.gpudata/pixels.xz','wb').write(lzma.compress(X.tobytes(),preset=9|lzma.PRESET_EXTREME))
